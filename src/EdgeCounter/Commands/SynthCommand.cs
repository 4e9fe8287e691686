using System.Diagnostics;
using System.Globalization;
using EdgeCounter.Simulation;
using OpenCvSharp;

namespace EdgeCounter.Commands;

/// <summary>Writes still, sharp simulated smear fields in the Pascal VOC layout of the BCCD set.</summary>
public static class SynthCommand
{
    public const string Usage = """
        Usage: EdgeCounter synth --out DIR [options]

        Writes N still, sharp fields of simulated Wright-Giemsa smears in the Pascal VOC layout of BCCD:
          DIR/JPEGImages/SynthImage_00000.jpg ...
          DIR/Annotations/SynthImage_00000.xml ...   one <object> per visible cell (truncated=1 at the edge)
          DIR/ImageSets/Main/all.txt                  the image ids, one per line
        The same options (seed included) give byte-identical files. A new slide (cells, stain, lamp,
        vignetting, noise, JPEG quality) starts every --fields-per-slide fields.

        Options:
          --out DIR                    output folder (created; existing files of the same name are replaced)
          --fields N                   number of fields (default 100)
          --seed S                     seed, unsigned 64-bit integer (default 1)
          --width W --height H         field size in pixels (default 640 x 480; 640x480 up to 2560x1920)
          --profile blood|marrow       smear type (default blood); marrow adds erythroblasts, myelocytes,
                                       metamyelocytes, band neutrophils, blasts, plasma cells, megakaryocytes
          --wbc-label subtype|merged   white-cell label: subtype (neutrophil, eosinophil, basophil, lymphocyte,
                                       monocyte, plasma cell, megakaryocyte; in marrow also erythroblast,
                                       myelocyte, metamyelocyte, band_neutrophil, blast; default) or merged
                                       (WBC, as BCCD)
          --um-per-pixel X             pixel scale in micrometres per pixel (default 0.1)
          --fields-per-slide K         fields taken from each slide before a new one (default 25)
          --measure-render FRAMES      instead of exporting: drive the simulated camera (W x H, 30 fps,
                                       meander script) for FRAMES frames and print the render time per frame
        Labels: RBC, Platelets, and white cells as above.
        """;

    public static async Task<int> RunAsync(CommandLine args, CancellationToken cancellationToken)
    {
        var measure = args.Int("measure-render", 0);
        var fields = args.Int("fields", 100);
        var seedText = args.String("seed") ?? "1";
        if (!ulong.TryParse(seedText, NumberStyles.Integer, CultureInfo.InvariantCulture, out var seed))
            throw new CommandLineException($"--seed: '{seedText}' is not an unsigned integer");
        var width = args.Int("width", 640);
        var height = args.Int("height", 480);
        var profile = (args.String("profile") ?? "blood").ToLowerInvariant() switch
        {
            "blood" => SlideProfile.Blood,
            "marrow" => SlideProfile.Marrow,
            var p => throw new CommandLineException($"--profile: '{p}' is not blood or marrow"),
        };
        var labels = (args.String("wbc-label") ?? "subtype").ToLowerInvariant() switch
        {
            "subtype" => WbcLabelMode.Subtype,
            "merged" => WbcLabelMode.Merged,
            var l => throw new CommandLineException($"--wbc-label: '{l}' is not subtype or merged"),
        };
        var mpp = args.Double("um-per-pixel", 0.1);
        var perSlide = args.Int("fields-per-slide", 25);
        var outDir = measure > 0 ? null : args.RequiredString("out");
        args.ThrowOnUnknown();
        if (fields < 1) throw new CommandLineException("--fields must be at least 1");
        if (perSlide < 1) throw new CommandLineException("--fields-per-slide must be at least 1");
        if (width is < 64 or > 4096 || height is < 64 or > 4096) throw new CommandLineException("--width and --height must be 64..4096");
        if (mpp is < 0.02 or > 1) throw new CommandLineException("--um-per-pixel must be 0.02..1");

        if (measure > 0) return MeasureRender(seed, profile, width, height, mpp, measure, cancellationToken);

        var images = Directory.CreateDirectory(Path.Combine(outDir!, "JPEGImages"));
        var annotations = Directory.CreateDirectory(Path.Combine(outDir!, "Annotations"));
        var sets = Directory.CreateDirectory(Path.Combine(outDir!, "ImageSets", "Main"));
        var ids = new List<string>(fields);
        var counts = new SortedDictionary<string, int>(StringComparer.Ordinal);
        var stopwatch = Stopwatch.StartNew();
        using var generator = new SyntheticFields(seed, profile, width, height, mpp, perSlide);
        for (var i = 0; i < fields; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var id = $"SynthImage_{i:D5}";
            using var field = generator.Render(i, out var truth);
            Cv2.ImEncode(".jpg", field, out var jpeg, new ImageEncodingParam(ImwriteFlags.JpegQuality, truth.JpegQuality));
            await File.WriteAllBytesAsync(Path.Combine(images.FullName, id + ".jpg"), jpeg, cancellationToken);
            var xml = VocAnnotation.ToXml(id + ".jpg", width, height, truth.Cells, labels);
            await File.WriteAllTextAsync(Path.Combine(annotations.FullName, id + ".xml"), xml, cancellationToken);
            ids.Add(id);
            foreach (var c in truth.Cells)
            {
                var label = VocAnnotation.Label(c.Type, labels);
                counts[label] = counts.GetValueOrDefault(label) + 1;
            }
        }
        await File.WriteAllTextAsync(Path.Combine(sets.FullName, "all.txt"), string.Concat(ids.Select(i => i + "\n")), cancellationToken);
        Console.WriteLine($"synth: wrote {fields} fields ({profile.ToString().ToLowerInvariant()}, {width}x{height}, {mpp} um/px, seed {seed}) to {Path.GetFullPath(outDir!)} in {stopwatch.Elapsed.TotalSeconds:F1} s");
        Console.WriteLine("synth: objects per label: " + string.Join(", ", counts.Select(kv => $"{kv.Key}={kv.Value}")));
        return 0;
    }

    private static int MeasureRender(ulong seed, SlideProfile profile, int width, int height, double mpp, int frames, CancellationToken cancellationToken)
    {
        // One core: the simulated camera must keep up without OpenCV's thread pool.
        Cv2.SetNumThreads(1);
        using var microscope = new SimulatedMicroscope(new MicroscopeOptions
        {
            Seed = seed, Profile = profile, Width = width, Height = height, MicrometresPerPixel = mpp, FramesPerSecond = 30,
        });
        var still = new List<double>();
        var moving = new List<double>();
        var stopwatch = new Stopwatch();
        for (long f = 0; f < frames; f++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            stopwatch.Restart();
            using var frame = microscope.RenderFrame(f, out var truth);
            stopwatch.Stop();
            (truth.Moving ? moving : still).Add(stopwatch.Elapsed.TotalMilliseconds);
        }
        var all = still.Concat(moving).ToList();
        static string Stats(List<double> ms)
        {
            if (ms.Count == 0) return "n=0";
            ms.Sort();
            return FormattableString.Invariant($"n={ms.Count} mean={ms.Average():F1} ms median={ms[ms.Count / 2]:F1} ms p95={ms[(int)(ms.Count * 0.95)]:F1} ms max={ms[^1]:F1} ms");
        }
        Console.WriteLine($"synth: render {width}x{height} {profile} ({Environment.ProcessorCount} logical CPUs, OpenCV threads {Cv2.GetNumThreads()}), {frames} frames at 30 fps, tiles rendered {microscope.TilesRendered}");
        Console.WriteLine("  all:    " + Stats(all));
        Console.WriteLine("  still:  " + Stats(still));
        Console.WriteLine("  moving: " + Stats(moving));
        return 0;
    }
}
