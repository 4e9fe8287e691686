namespace EdgeCounter.Publishing;

/// <summary>Every topic the service uses, under prefix P (default edgecounter/&lt;DeviceId&gt;).</summary>
public sealed class TopicMap
{
    public TopicMap(string prefix)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(prefix);
        if (prefix.IndexOfAny(['+', '#']) >= 0) throw new ArgumentException("A topic prefix cannot hold wildcards.", nameof(prefix));
        Prefix = prefix.TrimEnd('/');
        if (Prefix.Length == 0) throw new ArgumentException("Topic prefix is empty.", nameof(prefix));
    }

    public static TopicMap For(MqttOptions options) => new(options.EffectiveTopicPrefix);

    public string Prefix { get; }

    /// <summary>Retained: "online", "stopped" (clean shutdown) or "offline" (last will).</summary>
    public string Available => $"{Prefix}/available";

    /// <summary>QoS 1, not retained: one JSON message per counted field.</summary>
    public string Field => $"{Prefix}/field";

    /// <summary>Retained: the latest annotated field as JPEG bytes.</summary>
    public string FieldImage => $"{Prefix}/field/image";

    /// <summary>Retained: the live slide map (JPEG): counted fields at their slide positions, counted cells as dots.</summary>
    public string SlideImage => $"{Prefix}/slide/image";

    /// <summary>Retained JSON: the session's running totals.</summary>
    public string Counts => $"{Prefix}/counts";

    /// <summary>Retained plain number: one label's session total (e.g. P/counts/lymphocyte -> 31). A label that is not
    /// a plain topic level ('/', '+', '#') has those characters replaced by '_'.</summary>
    public string CountOf(string label) => $"{Counts}/{label.Replace('/', '_').Replace('+', '_').Replace('#', '_')}";

    /// <summary>Commands in: start, stop, reset, reclassify, reject, finalize.</summary>
    public string SessionSet => $"{Prefix}/session/set";

    /// <summary>Retained JSON: the session state after the last accepted command (and at start).</summary>
    public string SessionState => $"{Prefix}/session/state";

    /// <summary>JSON: why a command was refused.</summary>
    public string SessionError => $"{Prefix}/session/error";

    /// <summary>QoS 1, not retained: one JSON message per reclassify or reject (the audit trail as it grows).</summary>
    public string SessionCorrection => $"{Prefix}/session/correction";

    /// <summary>Retained JSON: the signed result of the last finalized session (re-sent on each amendment).</summary>
    public string Report => $"{Prefix}/report";

    /// <summary>Retained FHIR R4 JSON (a transaction Bundle): the same result for a lab's information system.</summary>
    public string ReportFhir => $"{Prefix}/report/fhir";

    /// <summary>Periodic JSON: throughput, latency, connection and outbox figures.</summary>
    public string Stats => $"{Prefix}/stats";

    /// <summary>Everything under the prefix, for subscribers.</summary>
    public string All => $"{Prefix}/#";
}
