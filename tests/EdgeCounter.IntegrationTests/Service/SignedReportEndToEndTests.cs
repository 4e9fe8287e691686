using System.Text.Json;
using EdgeCounter.Counting;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Lis;
using EdgeCounter.IntegrationTests.Publishing;
using EdgeCounter.IntegrationTests.Reports;
using Hl7.Fhir.Serialization;
using Microsoft.Extensions.Hosting;

namespace EdgeCounter.IntegrationTests.Service;

/// <summary>The review issue's acceptance, on the real service: a simulated session runs to its target; a cell is
/// reclassified and another rejected over MQTT; finalize; then the report's numbers and intervals, the FHIR Bundle
/// (validated against R4), the ORU^R01 at an MLLP listener and the PDF's text all carry the reviewed result.</summary>
[Collection("Service")]
public class SignedReportEndToEndTests
{
    private const string P = "edgecounter/scope-test";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(90);
    private static JsonElement Json(Received m) => JsonDocument.Parse(m.Payload).RootElement;

    [Fact]
    public async Task A_reviewed_session_is_signed_and_its_report_json_fhir_hl7_and_pdf_agree()
    {
        var port = FreePort.Next();
        var state = Directory.CreateTempSubdirectory("edgecounter-signed-").FullName;
        await using var lis = new MllpTestListener();
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(port, state, "--EdgeCounter:Report:Hl7:Host=127.0.0.1",
                $"--EdgeCounter:Report:Hl7:Port={lis.Port}"));
            await host.StartAsync();
            await using var watcher = await RecordingSubscriber.ConnectAsync(port, $"{P}/#");
            await watcher.WaitForAsync(m => m.Topic == $"{P}/available" && m.Text == "online", Wait, "online");
            await watcher.PublishAsync($"{P}/session/set", """{"action":"start","sampleId":"S-SIGN-1","target":20}"""u8.ToArray());
            var completed = Json(await watcher.WaitForAsync(m => m.Topic == $"{P}/counts" && m.Text.Contains("\"S-SIGN-1\"") && m.Text.Contains("\"state\":\"completed\""),
                Wait, "the session at its target"));
            var sessionId = completed.GetProperty("sessionId").GetString()!;

            // A neutrophil becomes a lymphocyte; a red cell is rejected.
            var cells = watcher.Messages.Where(m => m.Topic == $"{P}/field").Select(Json).Where(f => f.GetProperty("sessionId").GetString() == sessionId)
                .SelectMany(f => f.GetProperty("detections").EnumerateArray()).Where(d => d.GetProperty("status").GetString() == "new")
                .Select(d => (Id: d.GetProperty("cellId").GetInt64(), Label: d.GetProperty("label").GetString()!)).ToList();
            var neutrophil = cells.First(c => c.Label == "neutrophil").Id;
            var red = cells.First(c => c.Label == "RBC").Id;
            await watcher.PublishAsync($"{P}/session/set", JsonSerializer.SerializeToUtf8Bytes(new { action = "reclassify", cellId = neutrophil, to = "lymphocyte", reviewer = "A. Tech" }));
            await watcher.PublishAsync($"{P}/session/set", JsonSerializer.SerializeToUtf8Bytes(new { action = "reject", cellId = red, reviewer = "A. Tech" }));
            await watcher.WaitForCountAsync(m => m.Topic == $"{P}/session/correction", 2, Wait, "two corrections");
            await watcher.PublishAsync($"{P}/session/set", """{"action":"finalize","reviewer":"Dr B"}"""u8.ToArray());

            // The report: the reviewed numbers, each share with its Wilson interval.
            var report = Json(await watcher.WaitForAsync(m => m.Topic == $"{P}/report" && m.Text.Contains(sessionId), Wait, "the report"));
            var before = completed.GetProperty("totals");
            var totals = report.GetProperty("totals");
            Assert.Equal("final", report.GetProperty("state").GetString());
            Assert.Equal(before.GetProperty("neutrophil").GetInt64() - 1, totals.GetProperty("neutrophil").GetInt64());
            Assert.Equal(before.GetProperty("lymphocyte").GetInt64() + 1, totals.GetProperty("lymphocyte").GetInt64());
            Assert.Equal(before.GetProperty("RBC").GetInt64() - 1, totals.GetProperty("RBC").GetInt64());
            var white = report.GetProperty("whiteCells").GetInt64();
            foreach (var line in report.GetProperty("differential").EnumerateObject())
            {
                var count = line.Value.GetProperty("count").GetInt64();
                Assert.Equal(Math.Round(100.0 * count / white, 2), line.Value.GetProperty("percent").GetDouble(), 2);
                var (low, high) = ProportionInterval.Wilson95Percent(count, white);
                Assert.Equal([Math.Round(low, 2), Math.Round(high, 2)], line.Value.GetProperty("ci95").EnumerateArray().Select(v => v.GetDouble()));
            }
            var lymphocytes = totals.GetProperty("lymphocyte").GetInt64();

            // FHIR: a valid R4 Bundle with the same numbers.
            var fhir = await watcher.WaitForAsync(m => m.Topic == $"{P}/report/fhir" && m.Text.Contains(sessionId), Wait, "the FHIR report");
            var bundle = new FhirJsonDeserializer().Deserialize<Hl7.Fhir.Model.Bundle>(fhir.Text);
            var errors = bundle.Entry.SelectMany(e => FhirReportTests.Errors(e.Resource!)).ToList();
            Assert.True(errors.Count == 0, string.Join("\n", errors));
            var lymphocyteObservation = bundle.Entry.Select(e => e.Resource).OfType<Hl7.Fhir.Model.Observation>()
                .Single(o => o.Code.Coding.Any(c => c.System == "http://loinc.org" && c.Code == "736-9"));
            Assert.Equal((decimal)report.GetProperty("differential").GetProperty("lymphocyte").GetProperty("percent").GetDouble(),
                ((Hl7.Fhir.Model.Quantity)lymphocyteObservation.Value!).Value);

            // HL7: the ORU^R01 at the LIS, acknowledged, with the sample id and the reviewed lymphocyte count.
            var oru = Assert.Single(await lis.WaitForAsync(1, Wait));
            Assert.Contains("|ORU^R01^ORU_R01|", oru);
            Assert.Equal("S-SIGN-1", MllpTestListener.Field(oru, "OBR", 2));
            Assert.Contains(oru.Split('\r'), s => s.StartsWith("OBX|", StringComparison.Ordinal) && s.Split('|')[3].StartsWith("736-9^", StringComparison.Ordinal));

            // The PDF a lab files, named by the report.
            var pdf = Path.Combine(state, report.GetProperty("pdf").GetString()!);
            var text = PdfText.Of(File.ReadAllBytes(pdf));
            Assert.Contains("Sample id S-SIGN-1", text);
            Assert.Contains("Reviewer Dr B", text);
            Assert.Contains($"lymphocyte {lymphocytes} ", text);
            await host.StopAsync();
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }
}
