using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using EdgeCounter.Detection;
using Microsoft.Extensions.Logging;
using static EdgeCounter.Commands.EvalCommand;

namespace EdgeCounter.Commands;

/// <summary>
/// <c>eval --crops</c>: white-cell subtypes on single-cell images. Each crop goes through the detector as a field would;
/// the white cell nearest the crop's centre (at the operating threshold) gives the subtype, as the detector labels it.
/// A cell labelled <see cref="ModelLabels.UnidentifiedLabel"/> is unidentified, not a wrong subtype. Crop classes
/// that are not model subtypes (e.g. PBC's ig, erythroblast, platelet) are reported apart, outside the accuracy.
/// </summary>
internal static class CropEvaluation
{
    private const string NoWhiteCell = "none";

    /// <summary>Crop-set class names that abbreviate a model label (PBC's folder "ig").</summary>
    private static readonly Dictionary<string, string> CropClassAliases = new(StringComparer.Ordinal) { ["ig"] = "immature_granulocyte" };

    public static async Task<JsonObject> RunAsync(string dir, EvalSettings settings, ILoggerFactory loggerFactory, TextWriter output, CancellationToken cancellationToken)
    {
        var logger = loggerFactory.CreateLogger("eval");
        CropDataset dataset;
        try { dataset = CropDataset.Load(dir); }
        catch (Exception e) when (e is IOException or FormatException) { throw new EvalException(e.Message, e); }
        var classes = settings.Evaluated(dataset.Classes);

        using (var detector = OpenDetector(settings, loggerFactory))
        {
            var onnx = Onnx(detector);
            var labels = onnx.Labels;
            if (labels.SubtypeOf is null || labels.Subtypes.Count == 0)
                throw new EvalException($"model {onnx.Model.Name} {onnx.Model.Version} gives no white-cell subtypes");
            var threshold = onnx.OperatingThresholds[labels.SubtypeClassIndex];
            // Crop classes are paired with subtypes by name (plural "s" and case ignored), and with the precursors the
            // stage names (--name-precursors; PBC's "ig" is the immature granulocytes); the rest are other classes.
            var precursors = onnx.Model.Labels.Where(l => !labels.Subtypes.Contains(l) && !labels.Classes.Contains(l)).ToList();
            var candidates = labels.Subtypes.Concat(precursors).ToList();
            var subtypeOf = classes.ToDictionary(c => c, c => candidates.FirstOrDefault(s => s != ModelLabels.UnidentifiedLabel
                && LabelPairing.Normalize(s) == LabelPairing.Normalize(CropClassAliases.GetValueOrDefault(c.ToLowerInvariant(), c))));
            var known = classes.Where(c => subtypeOf[c] is not null).ToList();
            var others = classes.Where(c => subtypeOf[c] is null).ToList();
            if (others.Count > 0) logger.LogInformation("Crop classes that are not model subtypes, reported apart: {Classes}", string.Join(", ", others));
            var predictedNames = labels.Subtypes.Concat(precursors).Append(ModelLabels.UnidentifiedLabel).Append(NoWhiteCell).Distinct(StringComparer.Ordinal).ToList();
            var tallies = classes.ToDictionary(c => c, _ => new Dictionary<string, int>(StringComparer.Ordinal));
            var unexpected = new HashSet<string>(StringComparer.Ordinal);
            var redCells = new RedCellSizes(labels);
            var wall = Stopwatch.StartNew();
            var images = 0;
            // --held-out K: every K-th crop of each class in file order, the crops the training recipe held out (val_every).
            var crops = dataset.Images.Where(i => tallies.ContainsKey(i.Class));
            if (settings.HeldOutEvery > 0)
                crops = crops.OrderBy(i => i.ImagePath, StringComparer.Ordinal).GroupBy(i => i.Class)
                    .SelectMany(g => g.Where((_, k) => k % settings.HeldOutEvery == 0)).ToList();
            await foreach (var (crop, size, result) in DetectEachAsync(crops, i => i.ImagePath, detector, redCells, logger, cancellationToken))
            {
                images++;
                var cell = CropDataset.CellNearestCentre(result.Detections.Where(d => d.Score >= threshold), labels.SubtypeOf, size.Width, size.Height);
                var predicted = cell is null ? NoWhiteCell : cell.Label;
                if (!predictedNames.Contains(predicted))
                {
                    if (unexpected.Add(predicted)) logger.LogWarning("White cell labelled '{Label}', which is not a subtype: counted as unidentified", predicted);
                    predicted = ModelLabels.UnidentifiedLabel;
                }
                var tally = tallies[crop.Class];
                tally[predicted] = tally.GetValueOrDefault(predicted) + 1;
            }
            wall.Stop();
            var report = new CropReport(dataset, onnx, detector.PixelScale, redCells, known, others, known.ToDictionary(c => c, c => subtypeOf[c]!),
                predictedNames, tallies, images, wall.Elapsed, settings.OnlyText);
            report.Print(output);
            return report.ToJson();
        }
    }

    private sealed record CropReport(
        CropDataset Dataset, OnnxCellDetector Detector, PixelScaleStatus Scale, RedCellSizes RedCells,
        IReadOnlyList<string> Known, IReadOnlyList<string> Others, IReadOnlyDictionary<string, string> SubtypeOf,
        IReadOnlyList<string> PredictedNames, IReadOnlyDictionary<string, Dictionary<string, int>> Tallies, int Images, TimeSpan Wall, string OnlyText)
    {
        private int Count(string cls, string predicted) => Tallies[cls].GetValueOrDefault(predicted);
        private int Crops(string cls) => Tallies[cls].Values.Sum();
        private int Correct(string cls) => Count(cls, SubtypeOf[cls]);
        private int KnownCrops => Known.Sum(Crops);
        private int KnownCorrect => Known.Sum(Correct);
        private int KnownUnidentified => Known.Sum(c => Count(c, ModelLabels.UnidentifiedLabel));
        private int KnownNone => Known.Sum(c => Count(c, NoWhiteCell));
        private int Decided => KnownCrops - KnownUnidentified - KnownNone;

        private static double Ratio(int a, int b) => b == 0 ? double.NaN : (double)a / b;

        /// <summary>Correct / crops where a subtype was decided (unidentified cells and crops without a white cell left out).</summary>
        public double Accuracy => Ratio(KnownCorrect, Decided);

        /// <summary>Correct / all crops of model subtypes.</summary>
        public double AccuracyAllCrops => Ratio(KnownCorrect, KnownCrops);

        /// <summary>Signed error of the differential share's count: crops called this subtype minus crops of it, % of the latter.</summary>
        private double CountErrorPct(string cls) =>
            CountError.Percent(Known.Concat(Others).Sum(k => Count(k, SubtypeOf[cls])), Crops(cls));

        public void Print(TextWriter o)
        {
            PrintHeader(o, Detector, Scale, $"Dataset {Dataset.Root}: {Images} crops, classes {string.Join(", ", Known.Concat(Others))}{OnlyText}");
            o.WriteLine($"White-cell subtypes of the cell nearest each crop's centre: accuracy {F(Accuracy)} on {Decided} decided cells, {F(AccuracyAllCrops)} over all {KnownCrops} crops");
            o.WriteLine($"  unidentified {KnownUnidentified} ({F(100 * Ratio(KnownUnidentified, KnownCrops), "0.0")}%), no white cell found {KnownNone} ({F(100 * Ratio(KnownNone, KnownCrops), "0.0")}%)");
            o.WriteLine("  truth \\ predicted  " + string.Join(" ", PredictedNames.Select(n => Abbrev(n).PadLeft(6))) + "  recall  count error");
            foreach (var c in Known)
                o.WriteLine($"  {c,-18} " + string.Join(" ", PredictedNames.Select(p => Count(c, p).ToString(CultureInfo.InvariantCulture).PadLeft(6))) +
                            $"  {F(Ratio(Correct(c), Crops(c))),6}  {F(CountErrorPct(c), "+0.0;-0.0") + "%",10}");
            if (Others.Count > 0)
            {
                o.WriteLine("  not model subtypes (outside the accuracy):");
                foreach (var c in Others)
                    o.WriteLine($"  {c,-18} " + string.Join(" ", PredictedNames.Select(p => Count(c, p).ToString(CultureInfo.InvariantCulture).PadLeft(6))));
            }
            o.WriteLine("  recall: crops of the class called that subtype / crops of the class; count error: crops called the subtype - crops of it, % of the latter");
            o.WriteLine($"  wall {Wall.TotalSeconds:0.0} s");
        }

        private static string Abbrev(string s) => s.Length <= 6 ? s : s[..6];

        public JsonObject ToJson()
        {
            JsonObject Predicted(string cls)
            {
                var row = new JsonObject();
                foreach (var p in PredictedNames) row[p] = Count(cls, p);
                return row;
            }
            var recall = new JsonObject();
            var perClass = new JsonObject();
            foreach (var c in Known)
            {
                recall[c] = Round(Ratio(Correct(c), Crops(c)));
                perClass[c] = new JsonObject
                {
                    ["crops"] = Crops(c), ["correct"] = Correct(c), ["recall"] = Round(Ratio(Correct(c), Crops(c))),
                    ["countErrorPct"] = Round(CountErrorPct(c)),
                };
            }
            var others = new JsonObject();
            foreach (var c in Others) others[c] = new JsonObject { ["crops"] = Crops(c), ["predicted"] = Predicted(c) };
            return new JsonObject
            {
                ["kind"] = "crops",
                ["model"] = ModelJson(Detector, Scale),
                ["dataset"] = new JsonObject { ["root"] = Dataset.Root, ["images"] = Images },
                ["scale"] = ScaleJson(Scale, RedCells.MedianModelPx(Scale.InputScale), RedCells.Count),
                ["perClass"] = perClass,
                ["subtypes"] = new JsonObject
                {
                    ["accuracy"] = Round(Accuracy),
                    ["accuracyAllCrops"] = Round(AccuracyAllCrops),
                    ["crops"] = KnownCrops, ["decided"] = Decided, ["correct"] = KnownCorrect,
                    ["unidentified"] = KnownUnidentified, ["unidentifiedRate"] = Round(Ratio(KnownUnidentified, KnownCrops)),
                    ["noWhiteCell"] = KnownNone, ["noWhiteCellRate"] = Round(Ratio(KnownNone, KnownCrops)),
                    ["recall"] = recall,
                    ["labels"] = new JsonArray(Known.Select(c => (JsonNode?)JsonValue.Create(c)).ToArray()),
                    ["predictedLabels"] = new JsonArray(PredictedNames.Select(p => (JsonNode?)JsonValue.Create(p)).ToArray()),
                    ["confusion"] = new JsonArray(Known.Select(c => (JsonNode?)new JsonArray(PredictedNames.Select(p => (JsonNode?)JsonValue.Create(Count(c, p))).ToArray())).ToArray()),
                },
                ["otherClasses"] = others,
            };
        }
    }
}
