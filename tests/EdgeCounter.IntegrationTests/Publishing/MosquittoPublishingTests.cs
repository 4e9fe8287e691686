using System.Text.Json;
using EdgeCounter.Publishing;
using MQTTnet;
using MQTTnet.Protocol;

namespace EdgeCounter.IntegrationTests.Publishing;

/// <summary>The publisher against Debian's mosquitto, which the test runs itself.</summary>
public class MosquittoPublishingTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Retained_availability_fields_and_counts_reach_mosquitto_subscribers()
    {
        await using var mosquitto = await MosquittoBroker.StartAsync();
        await using var service = ServiceUnderTest.Create(mosquitto.Port);
        var topics = service.Topics;
        await service.Publisher.StartAsync();

        using var image = ServiceUnderTest.NoisyImage(640, 480);
        for (var i = 0; i < 3; i++) service.Report(ServiceUnderTest.MakeField(image, i, "lymphocyte", "monocyte", "RBC"));
        Assert.True(await service.Publisher.WaitForDrainAsync(Wait), "outbox did not drain");

        await using var late = await RecordingSubscriber.ConnectAsync(mosquitto.Port, topics.All);
        var available = await late.WaitForAsync(m => m.Topic == topics.Available, Wait, "available");
        Assert.True(available.Retain);
        Assert.Equal("online", available.Text);
        var counts = JsonDocument.Parse((await late.WaitForAsync(m => m.Topic == topics.Counts, Wait, "counts")).Payload).RootElement;
        Assert.Equal(3, counts.GetProperty("totals").GetProperty("lymphocyte").GetInt64());
        Assert.Equal(3, counts.GetProperty("fields").GetInt64());
        Assert.True((await late.WaitForAsync(m => m.Topic == topics.FieldImage, Wait, "image")).Retain);

        await late.PublishAsync(topics.SessionSet, """{"action":"reset"}"""u8.ToArray());
        var state = await late.WaitForAsync(m => m.Topic == topics.SessionState, Wait, "state");
        Assert.Equal(0, JsonDocument.Parse(state.Payload).RootElement.GetProperty("fields").GetInt64());

        await service.Publisher.StopAsync();
        await late.WaitForAsync(m => m.Topic == topics.Available && m.Text == "stopped", Wait, "stopped");
    }

    [Fact]
    public async Task A_broker_outage_mid_stream_loses_no_field_for_a_persistent_subscriber()
    {
        await using var mosquitto = await MosquittoBroker.StartAsync();
        await using var service = ServiceUnderTest.Create(mosquitto.Port, publishImages: false);
        var topics = service.Topics;
        await using var subscriber = await RecordingSubscriber.ConnectAsync(mosquitto.Port, topics.Field, "ward-dashboard-" + Guid.NewGuid().ToString("N")[..6], cleanSession: false);
        await service.Publisher.StartAsync();

        using var image = ServiceUnderTest.NoisyImage(320, 240);
        var next = 0;
        void Report(int n)
        {
            for (var i = 0; i < n; i++) Assert.True(service.Report(ServiceUnderTest.MakeField(image, next++, "neutrophil")).Accepted);
        }

        Report(10);
        await subscriber.WaitForCountAsync(m => m.Topic == topics.Field, 5, Wait, "fields before the outage");
        Report(5); // some of these are in flight when the broker goes
        await mosquitto.StopAsync();
        Report(10); // broker down: only the outbox has them
        await Task.Delay(1500);
        Assert.False(service.Publisher.IsConnected);
        Assert.True(service.Publisher.Outbox.Count >= 10);

        await mosquitto.StartAgainAsync();
        await subscriber.ReconnectAsync();
        Report(5);

        const int total = 30;
        await subscriber.WaitForCountAsync(m => m.Topic == topics.Field, total, TimeSpan.FromSeconds(20), "every field");
        await Task.Delay(200);
        var received = subscriber.Messages.Where(m => m.Topic == topics.Field)
            .Select(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("fieldId").GetInt64()).ToArray();
        // At-least-once: a message in flight at the cut may come twice; dropping repeats by fieldId leaves 1..30 with no gap.
        Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), received.Distinct().Order());
        Assert.All(subscriber.Messages.Where(m => m.Topic == topics.Field), m => Assert.Equal(MqttQualityOfServiceLevel.AtLeastOnce, m.QoS));
        Assert.True(await service.Publisher.WaitForDrainAsync(Wait));
        Assert.Equal(0, service.Publisher.GetStats().DroppedResults);
    }

    [Fact]
    public async Task A_TLS_broker_with_passwords_is_reached_through_the_hospital_CA_and_wrong_settings_lose_nothing()
    {
        var security = new MosquittoSecurity();
        await using var mosquitto = await MosquittoBroker.StartAsync(security);
        void Secure(MqttOptions o, string? password, string? ca)
        {
            o.UseTls = true;
            o.Username = security.Username;
            o.Password = password;
            o.CaCertificateFile = ca;
        }
        using var image = ServiceUnderTest.NoisyImage(320, 240);

        // A wrong password, then a broker certificate the machine's trust store does not know: never connected,
        // and the results stay in the outbox.
        foreach (var (password, ca, what) in new[] { ("wrong", security.CaCertificateFile, "wrong password"), (security.Password, null, "no CA") })
        {
            await using var refused = ServiceUnderTest.Create(mosquitto.Port, publishImages: false, configure: o => Secure(o, password, ca));
            Assert.Empty(refused.Options.Validate());
            await refused.Publisher.StartAsync();
            Assert.True(refused.Report(ServiceUnderTest.MakeField(image, 1, "lymphocyte")).Accepted);
            await Task.Delay(1500);
            Assert.False(refused.Publisher.IsConnected, what);
            Assert.True(refused.Publisher.Outbox.Count >= 1, what);
        }

        // The right password and the CA: every field arrives over TLS.
        await using var service = ServiceUnderTest.Create(mosquitto.Port, publishImages: false, configure: o => Secure(o, security.Password, security.CaCertificateFile));
        var topics = service.Topics;
        await using var dashboard = await RecordingSubscriber.ConnectAsync(mosquitto.Port, topics.All, configure: b => b
            .WithCredentials(security.Username, security.Password)
            .WithTlsOptions(t => t.UseTls().WithTargetHost("127.0.0.1").WithTrustChain(MqttOptions.LoadCaCertificates(security.CaCertificateFile))));
        await service.Publisher.StartAsync();
        for (var i = 0; i < 3; i++) Assert.True(service.Report(ServiceUnderTest.MakeField(image, i, "neutrophil", "RBC")).Accepted);
        var fields = await dashboard.WaitForCountAsync(m => m.Topic == topics.Field, 3, Wait, "fields over TLS");
        Assert.Equal([1L, 2L, 3L], fields.Select(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("fieldId").GetInt64()).Distinct().Order());
        Assert.Equal("online", (await dashboard.WaitForAsync(m => m.Topic == topics.Available, Wait, "available")).Text);
        Assert.True(service.Publisher.IsConnected);
        // Anonymous clients are refused by this broker: the credentials above were needed.
        await Assert.ThrowsAnyAsync<Exception>(() => RecordingSubscriber.ConnectAsync(mosquitto.Port, topics.All, configure: b => b
            .WithTlsOptions(t => t.UseTls().WithTargetHost("127.0.0.1").WithTrustChain(MqttOptions.LoadCaCertificates(security.CaCertificateFile)))));
    }

    [Fact]
    public async Task Over_MQTT_5_a_broker_that_requires_client_certificates_gets_every_field_from_the_device_certificate_only()
    {
        var security = new MosquittoSecurity { RequireClientCertificate = true };
        await using var mosquitto = await MosquittoBroker.StartAsync(security);
        void Secure(MqttOptions o, bool withCertificate)
        {
            o.ProtocolVersion = "5";
            o.UseTls = true;
            o.Username = security.Username;
            o.Password = security.Password;
            o.CaCertificateFile = security.CaCertificateFile;
            if (withCertificate) (o.ClientCertificateFile, o.ClientKeyFile) = (security.ClientCertificateFile, security.ClientKeyFile);
        }
        using var image = ServiceUnderTest.NoisyImage(320, 240);

        // Right password and CA but no client certificate: the TLS handshake is refused; results wait in the outbox.
        await using (var refused = ServiceUnderTest.Create(mosquitto.Port, publishImages: false, configure: o => Secure(o, withCertificate: false)))
        {
            Assert.Empty(refused.Options.Validate());
            await refused.Publisher.StartAsync();
            Assert.True(refused.Report(ServiceUnderTest.MakeField(image, 1, "lymphocyte")).Accepted);
            await Task.Delay(1500);
            Assert.False(refused.Publisher.IsConnected, "connected without a client certificate");
            Assert.True(refused.Publisher.Outbox.Count >= 1);
        }

        await using var service = ServiceUnderTest.Create(mosquitto.Port, publishImages: false, configure: o => Secure(o, withCertificate: true));
        Assert.Empty(service.Options.Validate());
        var topics = service.Topics;
        using var clientCertificate = MqttOptions.LoadClientCertificate(security.ClientCertificateFile, security.ClientKeyFile);
        await using var dashboard = await RecordingSubscriber.ConnectAsync(mosquitto.Port, topics.All, configure: b => b
            .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
            .WithCredentials(security.Username, security.Password)
            .WithTlsOptions(t => t.UseTls().WithTargetHost("127.0.0.1").WithTrustChain(MqttOptions.LoadCaCertificates(security.CaCertificateFile))
                .WithClientCertificates([clientCertificate])));
        await service.Publisher.StartAsync();
        for (var i = 0; i < 3; i++) Assert.True(service.Report(ServiceUnderTest.MakeField(image, i, "neutrophil", "RBC")).Accepted);
        var fields = await dashboard.WaitForCountAsync(m => m.Topic == topics.Field, 3, Wait, "fields over TLS with a client certificate");
        Assert.Equal([1L, 2L, 3L], fields.Select(m => JsonDocument.Parse(m.Payload).RootElement.GetProperty("fieldId").GetInt64()).Distinct().Order());
        Assert.True(service.Publisher.IsConnected);
        // mosquitto logs each connect as "New client connected from ... as <id> (p5, c1, k30, u'scope1')": p5 is MQTT 5.
        Assert.Contains($"as {service.Options.EffectiveClientId} (p5,", mosquitto.ReadLog());
    }

    [Fact]
    public void Client_certificate_settings_are_checked_at_start()
    {
        var errors = new MqttOptions { Mode = MqttMode.External, ClientCertificateFile = "/nonexistent/device.crt" }.Validate();
        Assert.Contains(errors, e => e.Contains("Mqtt:ClientCertificateFile needs Mqtt:UseTls"));
        errors = new MqttOptions { Mode = MqttMode.External, UseTls = true, ClientCertificateFile = "/nonexistent/device.crt" }.Validate();
        Assert.Contains(errors, e => e.Contains("go together"));
        Assert.Contains(new MqttOptions { ProtocolVersion = "4" }.Validate(), e => e.Contains("Mqtt:ProtocolVersion must be 3.1.1 or 5"));
        var dir = Directory.CreateTempSubdirectory("edgecounter-cert-").FullName;
        try
        {
            var (crt, key) = (Path.Combine(dir, "a.crt"), Path.Combine(dir, "a.key"));
            File.WriteAllText(crt, "not a certificate");
            File.WriteAllText(key, "not a key");
            errors = new MqttOptions { Mode = MqttMode.External, UseTls = true, ClientCertificateFile = crt, ClientKeyFile = key }.Validate();
            Assert.Contains(errors, e => e.Contains("not a PEM certificate and its private key"));
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void A_CA_file_is_checked_at_start()
    {
        var missing = new MqttOptions { Mode = MqttMode.External, UseTls = true, CaCertificateFile = "/nonexistent/ca.pem" };
        Assert.Contains(missing.Validate(), e => e.Contains("CaCertificateFile") && e.Contains("does not exist"));
        var notPem = Path.GetTempFileName();
        try
        {
            File.WriteAllText(notPem, "not a certificate");
            var garbage = new MqttOptions { Mode = MqttMode.External, UseTls = true, CaCertificateFile = notPem };
            Assert.Contains(garbage.Validate(), e => e.Contains("holds no PEM certificate"));
            var noTls = new MqttOptions { Mode = MqttMode.External, CaCertificateFile = notPem };
            Assert.Contains(noTls.Validate(), e => e.Contains("needs Mqtt:UseTls"));
        }
        finally { File.Delete(notPem); }
    }
}
