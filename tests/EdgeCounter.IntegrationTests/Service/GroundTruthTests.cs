using System.Collections.Concurrent;
using EdgeCounter.Acquisition;
using EdgeCounter.Counting;
using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Publishing;
using EdgeCounter.Simulation;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Xunit.Abstractions;

namespace EdgeCounter.IntegrationTests.Service;

/// <summary>
/// The running service judged by the simulator's ground truth: no field counted while the stage moved, no field
/// counted twice, and counts that match the cells on the slide within the detector's accuracy.
/// </summary>
[Collection("Service")]
public class GroundTruthTests(ITestOutputHelper output)
{
    private static string LabelOf(CellType type) => type switch
    {
        CellType.Erythrocyte => "RBC",
        CellType.Platelet => "Platelets",
        _ => type.ToString().ToLowerInvariant(),
    };

    [Fact]
    public async Task Counted_fields_are_still_sharp_never_repeated_and_counts_match_the_slide()
    {
        var state = Directory.CreateTempSubdirectory("edgecounter-truth-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(FreePort.Next(), state,
                "--EdgeCounter:Source:Simulator:RevisitProbability=0.25", "--EdgeCounter:Source:Simulator:Seed=8"));
            var source = (SimulatedFrameSource)host.Services.GetRequiredService<IFrameSource>();
            var outcomes = new ConcurrentQueue<(FrameTruth Truth, FieldFate Fate, IReadOnlyList<string>? Labels)>();
            host.Services.GetRequiredService<CountingWorker>().FieldHandled += o =>
                outcomes.Enqueue((source.TruthOf(o.Field.FrameIndex), o.Fate, o.Detection?.Detections.Select(d => d.Label).ToList()));
            await host.StartAsync();
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
            while (outcomes.Count(o => o.Fate == FieldFate.Counted) < 15 && DateTime.UtcNow < deadline) await Task.Delay(250);
            await host.StopAsync();

            var counted = outcomes.Where(o => o.Fate == FieldFate.Counted).ToList();
            Assert.True(counted.Count >= 10, $"only {counted.Count} fields counted in 90 s");
            Assert.All(counted, o => Assert.False(o.Truth.Moving, $"frame {o.Truth.FrameIndex} counted while the stage moved"));
            Assert.All(counted, o => Assert.True(o.Truth.DefocusSigma < 1, $"frame {o.Truth.FrameIndex} counted while defocused"));
            var stops = counted.Select(o => o.Truth.StopIndex).ToList();
            Assert.Equal(stops.Distinct().Count(), stops.Count);
            // A revisit of a field already counted is never counted again.
            Assert.All(counted, o => Assert.True(o.Truth.RevisitOf < 0 || !stops.Contains(o.Truth.RevisitOf),
                $"stop {o.Truth.StopIndex} returns to stop {o.Truth.RevisitOf}, which was already counted"));

            // Counts against the cells in view. The model, like BCCD's labels it was tuned on, takes most cells cut by
            // the frame edge as not countable (a cell half in view is counted in the field where it is whole), so each
            // cell is weighted by the shipped model's measured recall on held-out simulated fields
            // (`synth --seed 99 --fields 120 --wbc-label merged`, then `eval`; models/README.md):
            // whole cells / cells cut by the edge: white 1.00 / 0.57, RBC 1.00 / 0.69, platelets 0.83 / 0.43.
            static (double Whole, double Cut) RecallOf(string label) => label switch
            {
                "RBC" => (1.00, 0.69),
                "Platelets" => (0.83, 0.43),
                _ => (1.00, 0.57),
            };
            var truth = new Dictionary<string, int>();
            var expected = new Dictionary<string, double>();
            var found = new Dictionary<string, int>();
            foreach (var o in counted)
            {
                foreach (var cell in o.Truth.Cells)
                {
                    var label = LabelOf(cell.Type);
                    truth[label] = truth.GetValueOrDefault(label) + 1;
                    var recall = RecallOf(label);
                    expected[label] = expected.GetValueOrDefault(label) + (cell.Truncated ? recall.Cut : recall.Whole);
                }
                foreach (var label in o.Labels!) found[label] = found.GetValueOrDefault(label) + 1;
            }
            string[] white = ["neutrophil", "eosinophil", "basophil", "lymphocyte", "monocyte"];
            int Sum(Dictionary<string, int> d, params string[] labels) => labels.Sum(l => d.GetValueOrDefault(l));
            double Expect(params string[] labels) => labels.Sum(l => expected.GetValueOrDefault(l));
            var (whiteTruth, whiteFound) = (Sum(truth, white), Sum(found, white));
            var (redTruth, redFound) = (Sum(truth, "RBC"), Sum(found, "RBC"));
            var (plateletTruth, plateletFound) = (Sum(truth, "Platelets"), Sum(found, "Platelets"));
            output.WriteLine($"{counted.Count} fields counted, {outcomes.Count(o => o.Fate == FieldFate.Revisit)} revisits skipped");
            output.WriteLine($"white cells: in view {whiteTruth}, expected {Expect(white):0.0}, counted {whiteFound}; " +
                             $"RBC: in view {redTruth}, expected {Expect("RBC"):0.0}, counted {redFound}; " +
                             $"platelets: in view {plateletTruth}, expected {Expect("Platelets"):0.0}, counted {plateletFound}");
            output.WriteLine("by label (in view/counted): " + string.Join(", ", truth.Keys.Union(found.Keys).Order().Select(l => $"{l} {truth.GetValueOrDefault(l)}/{found.GetValueOrDefault(l)}")));
            Assert.True(whiteTruth > 0 && redTruth > 0, "the simulated run should hold white and red cells");
            // The bounds allow the sampling noise of a ~15-field run (a few dozen white cells and platelets); a field
            // counted twice, or detections while moving, would overshoot, and a broken detector would undershoot.
            Assert.InRange(whiteFound, Expect(white) * 0.65, Expect(white) * 1.35);
            Assert.InRange(redFound, Expect("RBC") * 0.88, Expect("RBC") * 1.12);
            Assert.InRange(plateletFound, Expect("Platelets") * 0.65, Expect("Platelets") * 1.35);
        }
        finally
        {
            Directory.Delete(state, true);
        }
    }
}
