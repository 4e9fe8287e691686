using Hl7.Fhir.Serialization;
using System.Text.Json;
using EdgeCounter.Counting;
using EdgeCounter.Publishing;

namespace EdgeCounter.IntegrationTests.Publishing;

/// <summary>A technologist reviews a session over MQTT (reclassify, reject, finalize, an amendment) through the
/// embedded broker; the audit trail, the errors and the signed report (P/report, its JSON, CSV and PDF files) follow.</summary>
public class ReviewAndReportTests
{
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task A_session_is_reviewed_signed_and_amended_over_mqtt_and_the_report_holds_the_reviewed_numbers()
    {
        var port = FreePort.Next();
        await using var broker = new EmbeddedBroker(port);
        await broker.StartAsync();
        await using var service = ServiceUnderTest.Create(port, target: 10);
        var topics = service.Topics;
        await using var live = await RecordingSubscriber.ConnectAsync(port, topics.All);
        await service.Publisher.StartAsync();
        await live.WaitForAsync(m => m.Topic == topics.Available && m.Text == "online", Wait, "online");

        using var image = ServiceUnderTest.NoisyImage(800, 600);
        service.Report(ServiceUnderTest.MakeField(image, 1, "neutrophil", "neutrophil", "neutrophil", "neutrophil", "RBC", "lymphocyte"));
        Assert.True(service.Report(ServiceUnderTest.MakeField(image, 2, "neutrophil", "lymphocyte", "lymphocyte", "monocyte", "eosinophil")).CompletedNow);

        // Every detection on P/field names its cell: ids 1..11 across the two fields, in order.
        var fields = await live.WaitForCountAsync(m => m.Topic == topics.Field, 2, Wait, "fields");
        var cells = fields.SelectMany(f => JsonDocument.Parse(f.Payload).RootElement.GetProperty("detections").EnumerateArray()
            .Select(d => (Id: d.GetProperty("cellId").GetInt64(), Label: d.GetProperty("label").GetString()!))).ToList();
        Assert.Equal(Enumerable.Range(1, 11).Select(i => (long)i), cells.Select(c => c.Id));
        var neutrophil = cells.First(c => c.Label == "neutrophil").Id;
        var red = cells.First(c => c.Label == "RBC").Id;
        var eosinophil = cells.First(c => c.Label == "eosinophil").Id;

        await live.PublishAsync(topics.SessionSet, JsonSerializer.SerializeToUtf8Bytes(new { action = "reclassify", cellId = neutrophil, to = "lymphocyte", reviewer = "A. Tech" }));
        var correction = JsonDocument.Parse((await live.WaitForAsync(m => m.Topic == topics.SessionCorrection, Wait, "correction")).Payload).RootElement;
        Assert.Equal(("neutrophil", "lymphocyte", "A. Tech"), (correction.GetProperty("correction").GetProperty("from").GetString(),
            correction.GetProperty("correction").GetProperty("to").GetString(), correction.GetProperty("correction").GetProperty("reviewer").GetString()));
        await live.PublishAsync(topics.SessionSet, JsonSerializer.SerializeToUtf8Bytes(new { action = "reject", cellId = red, reviewer = "A. Tech" }));
        await live.WaitForCountAsync(m => m.Topic == topics.SessionCorrection, 2, Wait, "second correction");

        // A cell the session does not have: an error, nothing changed.
        await live.PublishAsync(topics.SessionSet, """{"action":"reject","cellId":99}"""u8.ToArray());
        var error = JsonDocument.Parse((await live.WaitForAsync(m => m.Topic == topics.SessionError, Wait, "error")).Payload).RootElement;
        Assert.Contains("cell 99 is not a cell of session", error.GetProperty("error").GetString());

        await live.PublishAsync(topics.SessionSet, """{"action":"finalize","reviewer":"Dr B"}"""u8.ToArray());
        var report = JsonDocument.Parse((await live.WaitForAsync(m => m.Topic == topics.Report, Wait, "report")).Payload).RootElement;
        var state = await live.WaitForAsync(m => m.Topic == topics.SessionState && m.Text.Contains("\"final\""), Wait, "final state");
        Assert.Equal("Dr B", JsonDocument.Parse(state.Payload).RootElement.GetProperty("reviewer").GetString());

        // The reviewed numbers: 4 neutrophils (one of 5 now a lymphocyte), 4 lymphocytes, 1 monocyte, 1 eosinophil; the red cell rejected.
        Assert.Equal("final", report.GetProperty("state").GetString());
        Assert.Equal("Dr B", report.GetProperty("reviewer").GetString());
        Assert.Equal(10, report.GetProperty("whiteCells").GetInt64());
        Assert.Equal(0, report.GetProperty("totals").GetProperty("RBC").GetInt64());
        var lymphocytes = report.GetProperty("differential").GetProperty("lymphocyte");
        Assert.Equal((4L, 40.0), (lymphocytes.GetProperty("count").GetInt64(), lymphocytes.GetProperty("percent").GetDouble()));
        var (low, high) = ProportionInterval.Wilson95Percent(4, 10);
        Assert.Equal([Math.Round(low, 2), Math.Round(high, 2)], lymphocytes.GetProperty("ci95").EnumerateArray().Select(v => v.GetDouble()));
        Assert.Equal(JsonValueKind.Null, lymphocytes.GetProperty("flag").ValueKind); // 40 % within 20-40 %
        Assert.Equal(JsonValueKind.Null, report.GetProperty("differential").GetProperty("monocyte").GetProperty("flag").ValueKind); // 10 % within 2-10 %
        Assert.Contains("Under 200 cells the intervals are wide", report.GetProperty("precision").GetString());
        Assert.Empty(report.GetProperty("amendments").EnumerateArray());
        Assert.Equal(2, report.GetProperty("corrections").GetInt32());

        // An amendment after sign-off: the report is issued again, saying so.
        await live.PublishAsync(topics.SessionSet, JsonSerializer.SerializeToUtf8Bytes(new { action = "reclassify", cellId = eosinophil, to = "monocyte", reviewer = "Dr B" }));
        var amended = JsonDocument.Parse((await live.WaitForCountAsync(m => m.Topic == topics.Report, 2, Wait, "amended report"))[1].Payload).RootElement;
        var amendment = Assert.Single(amended.GetProperty("amendments").EnumerateArray());
        Assert.Equal(("eosinophil", "monocyte"), (amendment.GetProperty("from").GetString(), amendment.GetProperty("to").GetString()));
        Assert.Equal(2, amended.GetProperty("differential").GetProperty("monocyte").GetProperty("count").GetInt64());
        Assert.Equal("high", amended.GetProperty("differential").GetProperty("monocyte").GetProperty("flag").GetString()); // 20 % above 2-10 %

        // Saved under the state directory: the JSON as published, the CSV with the same numbers.
        var sessionId = amended.GetProperty("sessionId").GetString()!;
        var saved = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(service.StateDirectory, "reports", sessionId + ".json"))).RootElement;
        Assert.Equal(2, saved.GetProperty("differential").GetProperty("monocyte").GetProperty("count").GetInt64());
        var csv = File.ReadAllLines(Path.Combine(service.StateDirectory, amended.GetProperty("csv").GetString()!));
        Assert.Equal("label,count,percent,ci95_low,ci95_high,reference_low,reference_high,flag", csv[0]);
        Assert.Contains(csv, l => l.StartsWith("monocyte,2,20,", StringComparison.Ordinal) && l.EndsWith(",2,10,high", StringComparison.Ordinal));
        Assert.Contains("reviewer,Dr B", csv);
        Assert.Contains("amendments,1", csv);

        // The same result as FHIR R4 on P/report/fhir (retained) and beside the JSON: amended, with the reviewed numbers.
        var fhirMessages = await live.WaitForCountAsync(m => m.Topic == topics.ReportFhir, 2, Wait, "FHIR reports");
        var bundle = new Hl7.Fhir.Serialization.FhirJsonDeserializer().Deserialize<Hl7.Fhir.Model.Bundle>(fhirMessages[1].Text);
        var diagnostic = Assert.IsType<Hl7.Fhir.Model.DiagnosticReport>(bundle.Entry[0].Resource);
        Assert.Equal(Hl7.Fhir.Model.DiagnosticReport.DiagnosticReportStatus.Amended, diagnostic.Status);
        var monocytes = bundle.Entry.Select(e => e.Resource).OfType<Hl7.Fhir.Model.Observation>()
            .Single(o => o.Code.Coding.Any(c => c.System == "http://loinc.org" && c.Code == "5905-5"));
        Assert.Equal(20m, ((Hl7.Fhir.Model.Quantity)monocytes.Value!).Value);
        Assert.Equal(fhirMessages[1].Text, File.ReadAllText(Path.Combine(service.StateDirectory, "reports", sessionId + ".fhir.json")));

        // And the PDF a lab files, named by the JSON: the reviewed numbers, the signer and the amendment on the page.
        Assert.Equal(Path.Combine("reports", sessionId + ".pdf"), amended.GetProperty("pdf").GetString());
        var text = PdfText.Of(File.ReadAllBytes(Path.Combine(service.StateDirectory, amended.GetProperty("pdf").GetString()!)));
        Assert.Contains($"Session id {sessionId}", text);
        Assert.Contains("Reviewer Dr B", text);
        var monocyte = amended.GetProperty("differential").GetProperty("monocyte");
        var ci = monocyte.GetProperty("ci95").EnumerateArray().Select(v => v.GetDouble().ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Contains($"monocyte 2 20.0 {ci[0]}–{ci[1]} 2.0–10.0 high", text);
        Assert.Contains($"eosinophil → monocyte Dr B", text);
    }
}
