using EdgeCounter.Commands;

EdgeCounter.Hosting.NativeMemory.LimitMallocArenas();

// One executable: with no command it runs the service; the offline commands are thin front doors onto the same stages.
var commands = new Dictionary<string, (string Usage, Func<CommandLine, CancellationToken, Task<int>> Run)>(StringComparer.OrdinalIgnoreCase)
{
    ["synth"] = (SynthCommand.Usage, SynthCommand.RunAsync),
    ["eval"] = (EvalCommand.Usage, EvalCommand.RunAsync),
    ["count"] = (CountCommand.Usage, CountCommand.RunAsync),
    ["bench"] = (BenchCommand.Usage, BenchCommand.RunAsync),
    ["simcheck"] = (SimcheckCommand.Usage, SimcheckCommand.RunAsync),
    ["calibrate"] = (CalibrateCommand.Usage, CalibrateCommand.RunAsync),
};

// Every command and the service need OpenCV: a missing native library is an installation problem, reported
// plainly (exit code 2, which systemd does not restart in a loop) instead of failing on the first frame.
if (!(args.Length > 0 && args[^1] is "-h" or "--help" or "help") && EdgeCounter.Hosting.NativeRuntimes.OpenCvProblem() is { } openCvProblem)
{
    Console.Error.WriteLine($"EdgeCounter cannot start: {openCvProblem}");
    return EdgeCounter.Hosting.ServiceHost.ConfigurationError;
}

if (args.Length > 0 && commands.TryGetValue(args[0], out var command))
{
    var commandLine = new CommandLine(args.Skip(1));
    if (commandLine.Help) { Console.WriteLine(command.Usage); return 0; }
    using var cts = new CancellationTokenSource();
    Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
    try
    {
        return await command.Run(commandLine, cts.Token);
    }
    catch (CommandLineException e)
    {
        Console.Error.WriteLine($"{args[0]}: {e.Message}");
        Console.Error.WriteLine(command.Usage);
        return 2;
    }
    catch (OperationCanceledException)
    {
        return 130;
    }
}

if (args.Length > 0 && args[0] is "-h" or "--help" or "help")
{
    Console.WriteLine("""
        EdgeCounter: counts blood and bone-marrow cells while a technician moves the slide.

        Usage:
          EdgeCounter [--EdgeCounter:Key=Value ...]   run the service (configuration: appsettings.json)
          EdgeCounter synth --help                    write synthetic smear fields in Pascal VOC layout
          EdgeCounter eval --help                     evaluate the detector on a VOC-layout set (COCO metrics)
          EdgeCounter count --help                    count cells in image files or folders
          EdgeCounter bench --help                    benchmark every stage on this machine
          EdgeCounter simcheck --help                 is each cell counted once? (simulated microscope, its truth)
        """);
    return 0;
}

return await EdgeCounter.Hosting.ServiceHost.RunAsync(args);
