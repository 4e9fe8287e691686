using System.Text;
using EdgeCounter.Counting;
using EdgeCounter.Lis;
using EdgeCounter.Reporting;
using EdgeCounter.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace EdgeCounter.Publishing;

/// <summary>Issues the signed result: at finalize and at each amendment after it, the report is saved under the state
/// directory (reports/&lt;sessionId&gt;.json, .csv, .pdf and .fhir.json, replaced atomically), queued on P/report and, as
/// FHIR R4, on P/report/fhir (both retained) and queued for the lab's systems that are configured (Report:Hl7, Report:Fhir).</summary>
public sealed class ReportPublisher
{
    private readonly MqttPublisher _publisher;
    private readonly ModelPayload _model;
    private readonly ReportOptions _options;
    private readonly string _stateDirectory;
    private readonly TimeProvider _clock;
    private readonly ILogger _logger;
    private readonly IReadOnlyList<ReportDelivery> _deliveries;

    /// <param name="deliveries">Deliver each report to the lab's systems (HL7 over MLLP, FHIR over HTTP); none: no export.</param>
    public ReportPublisher(MqttPublisher publisher, ModelPayload model, ReportOptions options, string stateDirectory, TimeProvider? clock = null,
        ILogger<ReportPublisher>? logger = null, IEnumerable<ReportDelivery>? deliveries = null)
    {
        _deliveries = deliveries?.ToArray() ?? [];
        _publisher = publisher ?? throw new ArgumentNullException(nameof(publisher));
        _model = model ?? throw new ArgumentNullException(nameof(model));
        _options = options ?? throw new ArgumentNullException(nameof(options));
        ArgumentException.ThrowIfNullOrWhiteSpace(stateDirectory);
        _stateDirectory = stateDirectory;
        _clock = clock ?? TimeProvider.System;
        _logger = (ILogger?)logger ?? NullLogger.Instance;
    }

    /// <summary>Where reports are saved.</summary>
    public string Directory => Path.Combine(_stateDirectory, "reports");

    public SessionReport Issue(SessionReview review)
    {
        var sessionId = review.Counts.SessionId;
        var csvName = Path.Combine("reports", sessionId + ".csv");
        var pdfName = Path.Combine("reports", sessionId + ".pdf");
        var report = SessionReport.Create(review, _model.Name, _model.Version, _options, _clock.GetUtcNow()) with { Csv = csvName };
        Save(report, csvName, Encoding.UTF8.GetBytes(ReportCsv.Format(report)));
        // The JSON names the PDF only once it is on disk: a lab system that follows "pdf" finds the file.
        if (BuildPdf(report) is { } pdf && Save(report, pdfName, pdf)) report = report with { Pdf = pdfName };
        var json = PublishingJson.Serialize(report);
        Save(report, Path.Combine("reports", sessionId + ".json"), json);
        var fhir = Encoding.UTF8.GetBytes(FhirReport.ToJson(report));
        Save(report, Path.Combine("reports", sessionId + ".fhir.json"), fhir);
        _publisher.EnqueueReport(json);
        _publisher.EnqueueReportFhir(fhir);
        foreach (var delivery in _deliveries) delivery.Enqueue(report);
        _logger.LogInformation("Report of session {SessionId} (sample {SampleId}) issued: {State}, signed by {Reviewer}, {Amendments} amendments",
            report.SessionId, report.SampleId, report.State, report.Reviewer, report.Amendments.Count);
        return report;
    }

    /// <summary>Writes one of the report's files atomically; false (logged) when it could not be saved.</summary>
    private bool Save(SessionReport report, string relativePath, byte[] bytes)
    {
        try
        {
            System.IO.Directory.CreateDirectory(Directory);
            AtomicFile.Write(Path.Combine(_stateDirectory, relativePath), bytes, flushToDisk: true);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The result still goes out on P/report (through the outbox); the files can be issued again by an amendment.
            _logger.LogError(e, "{File} of session {SessionId} could not be saved; the report is still published", relativePath, report.SessionId);
            return false;
        }
    }

    /// <summary>The PDF's bytes; null (logged) when it cannot be built. The PDF is a copy for filing: no font, or a
    /// layout fault, must never hold back the signed result itself.</summary>
    private byte[]? BuildPdf(SessionReport report)
    {
        try
        {
            return ReportPdf.Build(report);
        }
        catch (ReportFontMissingException e)
        {
            _logger.LogError("The PDF of session {SessionId} was not written: {Reason}", report.SessionId, e.Message);
            return null;
        }
        catch (Exception e)
        {
            _logger.LogError(e, "The PDF of session {SessionId} could not be built; the report is still published without it", report.SessionId);
            return null;
        }
    }
}
