namespace EdgeCounter.Commands;

/// <summary>
/// A small parser for "--name value" and "--flag" options plus positional arguments.
/// Enough for the offline commands; the service itself reads options through .NET configuration.
/// </summary>
public sealed class CommandLine
{
    private readonly Dictionary<string, string?> _options = new(StringComparer.OrdinalIgnoreCase);
    private readonly HashSet<string> _read = new(StringComparer.OrdinalIgnoreCase);

    public CommandLine(IEnumerable<string> args)
    {
        var list = args.ToList();
        for (var i = 0; i < list.Count; i++)
        {
            var a = list[i];
            if (a is "-h" or "--help") { Help = true; continue; }
            if (a.StartsWith("--", StringComparison.Ordinal))
            {
                var name = a[2..];
                string? value = null;
                var eq = name.IndexOf('=');
                if (eq >= 0) { value = name[(eq + 1)..]; name = name[..eq]; }
                else if (i + 1 < list.Count && !list[i + 1].StartsWith("--", StringComparison.Ordinal)) value = list[++i];
                _options[name] = value;
            }
            else Positional.Add(a);
        }
    }

    public bool Help { get; }

    public List<string> Positional { get; } = new();

    public bool Flag(string name) { _read.Add(name); return _options.ContainsKey(name); }

    public string? String(string name) { _read.Add(name); return _options.TryGetValue(name, out var v) ? v : null; }

    public string RequiredString(string name) =>
        String(name) ?? throw new CommandLineException($"--{name} is required");

    public int Int(string name, int fallback) => Parse(name, fallback, int.TryParse);

    public double Double(string name, double fallback) =>
        Parse(name, fallback, (string s, out double v) => double.TryParse(s, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out v));

    /// <summary>Options given that no getter asked for: a typo should not pass silently.</summary>
    public IEnumerable<string> Unread => _options.Keys.Where(k => !_read.Contains(k));

    private delegate bool TryParser<T>(string s, out T value);

    private T Parse<T>(string name, T fallback, TryParser<T> parse)
    {
        var s = String(name);
        if (s is null) return fallback;
        return parse(s, out var v) ? v : throw new CommandLineException($"--{name}: '{s}' is not a valid {typeof(T).Name.ToLowerInvariant()}");
    }

    public void ThrowOnUnknown()
    {
        var unknown = Unread.ToList();
        if (unknown.Count > 0) throw new CommandLineException($"unknown option(s): {string.Join(", ", unknown.Select(u => "--" + u))}");
    }
}

public sealed class CommandLineException(string message) : Exception(message);
