namespace EdgeCounter.Detection;

/// <summary>Finds the shipped model: <c>models/cellnet.onnx</c> beside the executable, else in the repository's models/.</summary>
public static class ModelLocator
{
    public const string DefaultModelFile = "cellnet.onnx";

    /// <summary>The first existing candidate, or the executable's models/ path (so the error names where it was expected).</summary>
    public static string FindDefaultModel()
    {
        var besideExe = Path.Combine(AppContext.BaseDirectory, "models", DefaultModelFile);
        if (File.Exists(besideExe)) return besideExe;
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            if (FindRepositoryRoot(start) is { } root && File.Exists(Path.Combine(root, "models", DefaultModelFile)))
                return Path.Combine(root, "models", DefaultModelFile);
        return besideExe;
    }

    /// <summary>A relative path is taken from the working directory, else from the executable's folder (a service
    /// started by systemd or Windows runs in another directory than its binary's).</summary>
    public static string Resolve(string path)
    {
        var full = Path.GetFullPath(path);
        if (File.Exists(full) || Path.IsPathRooted(path)) return full;
        var besideExe = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, path));
        return File.Exists(besideExe) ? besideExe : full;
    }

    /// <summary>Walks up from <paramref name="start"/> to the folder holding EdgeCounter.sln, or null.</summary>
    public static string? FindRepositoryRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "EdgeCounter.sln"))) return dir.FullName;
        return null;
    }
}
