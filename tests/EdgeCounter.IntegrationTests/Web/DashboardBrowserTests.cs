using EdgeCounter.Hosting;
using EdgeCounter.IntegrationTests.Publishing;
using EdgeCounter.IntegrationTests.Service;
using EdgeCounter.Web;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using PuppeteerSharp;
using Xunit.Abstractions;

namespace EdgeCounter.IntegrationTests.Web;

/// <summary>The dashboard pages in a real browser (Debian's chromium, headless) against the real service: live counts
/// over MQTT over WebSockets, a session started from the page, the ward page listing the microscope.</summary>
[Collection("Service")]
public class DashboardBrowserTests(ITestOutputHelper output)
{
    private const string Chromium = "/usr/bin/chromium";

    private static Task<IBrowser> LaunchBrowserAsync() => Puppeteer.LaunchAsync(new LaunchOptions
    {
        ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
    });

    [Fact]
    public async Task The_page_shows_live_counts_and_starts_a_session_and_the_ward_page_lists_the_microscope()
    {
        Assert.True(File.Exists(Chromium), $"{Chromium} is missing: apt-get install chromium (.ci/run does)");
        var state = Directory.CreateTempSubdirectory("edgecounter-dash-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(FreePort.Next(), state));
            await host.StartAsync();
            var url = host.Services.GetRequiredService<WebEndpoints>().BoundUrls.Single();
            await using var browser = await LaunchBrowserAsync();
            await using var page = await browser.NewPageAsync();
            var errors = new List<string>();
            page.Console += (_, e) => { if (e.Message.Type == ConsoleType.Error) errors.Add(e.Message.Text); };
            page.PageError += (_, e) => errors.Add(e.Message);
            await page.SetViewportAsync(new ViewPortOptions { Width = 1280, Height = 1000 });
            await page.GoToAsync(url + "/");
            var wait = new WaitForFunctionOptions { Timeout = 60_000, PollingInterval = 200 };
            try
            {
                await page.WaitForFunctionAsync("() => document.getElementById('available').textContent === 'online'", wait);
                // Live counts: the red cells' row fills in and grows; the latest field shows.
                await page.WaitForFunctionAsync("() => Number(document.querySelector('#totals tr[data-label=\"RBC\"] td.count')?.textContent) > 0", wait);
                await page.WaitForFunctionAsync("() => document.getElementById('field-image').naturalWidth >= 320", wait);

                // A white cell counted: the differential has its bars. For a person to look at (docs/dashboard.png was
                // taken so): EDGECOUNTER_SCREENSHOT=path.
                await page.WaitForFunctionAsync("() => Number(document.querySelector('#groups tr[data-label=\"WBC\"] td.count')?.textContent) >= 3"
                    + " && document.querySelectorAll('#differential .bar').length > 0", wait);
                // Each share with its 95 % interval, e.g. "(21.0-44.5)".
                Assert.Matches(@"^\(\d+\.\d-\d+\.\d\)$", await page.EvaluateExpressionAsync<string>("document.querySelector('#differential .bar .ci').textContent"));
                await page.ScreenshotAsync(Environment.GetEnvironmentVariable("EDGECOUNTER_SCREENSHOT") is { Length: > 0 } shot
                    ? shot : Path.Combine(state, "dashboard.png"), new ScreenshotOptions { FullPage = true });

                await page.TypeAsync("#sample", "S-from-the-page");
                await page.TypeAsync("#target-input", "150");
                await page.ClickAsync("#start");
                await page.WaitForFunctionAsync("() => document.getElementById('sample-id').textContent === 'S-from-the-page'", wait);
                Assert.Equal("150", await page.EvaluateExpressionAsync<string>("document.getElementById('target').textContent"));
                var counting = host.Services.GetRequiredService<Counting.CountingService>().Snapshot();
                Assert.Equal("S-from-the-page", counting.SampleId);
                Assert.Equal(150, counting.Target);

                await page.GoToAsync(url + "/ward");
                await page.WaitForFunctionAsync("() => document.querySelector('#ward tr[data-device=\"scope-test\"] .sample')?.textContent === 'S-from-the-page'", wait);
            }
            catch (WaitTaskTimeoutException)
            {
                output.WriteLine("browser errors: " + string.Join(" | ", errors));
                output.WriteLine(await page.GetContentAsync());
                throw;
            }
            Assert.Empty(errors);
            await host.StopAsync();
        }
        finally { Directory.Delete(state, recursive: true); }
    }

    [Fact]
    public async Task The_review_page_shows_each_counted_cell_and_a_technologist_reclassifies_rejects_and_signs_off_there()
    {
        var state = Directory.CreateTempSubdirectory("edgecounter-review-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(FreePort.Next(), state, "--EdgeCounter:Counting:DefaultTarget=5"));
            await host.StartAsync();
            var counting = host.Services.GetRequiredService<Counting.CountingService>();
            var url = host.Services.GetRequiredService<WebEndpoints>().BoundUrls.Single();
            await using var browser = await LaunchBrowserAsync();
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (counting.Snapshot().State != Counting.SessionState.Completed && DateTime.UtcNow < deadline) await Task.Delay(200);
            Assert.Equal(Counting.SessionState.Completed, counting.Snapshot().State);

            await using var page = await browser.NewPageAsync();
            var errors = new List<string>();
            page.PageError += (_, e) => errors.Add(e.Message);
            await page.SetViewportAsync(new ViewPortOptions { Width = 1280, Height = 1000 });
            await page.GoToAsync(url + "/review");
            var wait = new WaitForFunctionOptions { Timeout = 60_000, PollingInterval = 200 };
            try
            {
                // Every counted cell has its tile, and its crop shows (fetched from /cells/<session>/<cell>.jpg).
                var cells = counting.Review().Cells.Where(c => c.Status != Counting.CellStatus.Moved).ToList();
                await page.WaitForFunctionAsync($"() => document.querySelectorAll('figure.cell').length === {cells.Count}", wait);
                await page.WaitForFunctionAsync("() => [...document.querySelectorAll('figure.cell img')].every(i => i.naturalWidth > 0)", wait);
                // Grouped by label, unidentified first, least confident first within a group.
                var groups = await page.EvaluateExpressionAsync<string[]>("[...document.querySelectorAll('#gallery .group')].map(g => g.dataset.label)");
                Assert.Equal(cells.Select(c => c.Label).Distinct().Count(), groups.Length);
                if (groups.Contains("unidentified")) Assert.Equal("unidentified", groups[0]);
                foreach (var label in groups)
                {
                    var shown = await page.EvaluateExpressionAsync<long[]>($"[...document.querySelectorAll('#gallery .group[data-label=\"{label}\"] figure')].map(f => Number(f.dataset.cellId))");
                    Assert.Equal(cells.Where(c => c.Label == label).OrderBy(c => Math.Round(c.Score, 3)).ThenBy(c => c.CellId).Select(c => c.CellId), shown);
                }

                await page.TypeAsync("#reviewer", "A. Tech");
                var white = cells.First(c => c.Label != "lymphocyte" && c.Label is not ("RBC" or "Platelets"));
                var red = cells.First(c => c.Label == "RBC");
                await page.SelectAsync($"figure[data-cell-id=\"{white.CellId}\"] select.relabel", "lymphocyte");
                await page.WaitForFunctionAsync($"() => document.querySelector('figure[data-cell-id=\"{white.CellId}\"]')?.dataset.label === 'lymphocyte'", wait);
                await page.ClickAsync($"figure[data-cell-id=\"{red.CellId}\"] button.reject");
                await page.WaitForFunctionAsync($"() => document.querySelector('figure[data-cell-id=\"{red.CellId}\"]')?.classList.contains('rejected')", wait);
                var review = counting.Review();
                Assert.Equal("lymphocyte", review.Cells.Single(c => c.CellId == white.CellId).Label);
                Assert.Equal(Counting.CellStatus.Rejected, review.Cells.Single(c => c.CellId == red.CellId).Status);
                Assert.Equal(["A. Tech", "A. Tech"], review.Corrections.Select(c => c.Reviewer));

                await page.ClickAsync("#finalize");
                await page.WaitForFunctionAsync("() => document.getElementById('state').textContent === 'final'", wait);
                Assert.Equal(Counting.SessionState.Final, counting.Snapshot().State);
                Assert.Equal("A. Tech", counting.Snapshot().Reviewer);
                if (Environment.GetEnvironmentVariable("EDGECOUNTER_REVIEW_SCREENSHOT") is { Length: > 0 } shot)
                    await page.ScreenshotAsync(shot, new ScreenshotOptions { FullPage = true });
            }
            catch (WaitTaskTimeoutException)
            {
                output.WriteLine("browser errors: " + string.Join(" | ", errors));
                output.WriteLine(await page.GetContentAsync());
                throw;
            }
            Assert.Empty(errors);
            await host.StopAsync();
        }
        finally { Directory.Delete(state, recursive: true); }
    }

    [Fact]
    public async Task In_marrow_mode_the_page_shows_nucleated_cells_and_says_which_lineages_the_model_cannot_see()
    {
        var state = Directory.CreateTempSubdirectory("edgecounter-dash-marrow-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(FreePort.Next(), state, "--EdgeCounter:Counting:Mode=marrow",
                "--EdgeCounter:Source:Simulator:Profile=marrow"));
            await host.StartAsync();
            var url = host.Services.GetRequiredService<WebEndpoints>().BoundUrls.Single();
            await using var browser = await LaunchBrowserAsync();
            await using var page = await browser.NewPageAsync();
            var errors = new List<string>();
            page.PageError += (_, e) => errors.Add(e.Message);
            await page.GoToAsync(url + "/");
            var wait = new WaitForFunctionOptions { Timeout = 60_000, PollingInterval = 200 };
            await page.WaitForFunctionAsync("() => Number(document.querySelector('#groups tr[data-label=\"granulocyte\"] td.count')?.textContent) > 0", wait);
            Assert.Equal("nucleated cells", await page.EvaluateExpressionAsync<string>("document.getElementById('cell-kind').textContent"));
            Assert.Equal("500", await page.EvaluateExpressionAsync<string>("document.getElementById('target').textContent"));
            Assert.False(await page.EvaluateExpressionAsync<bool>("document.getElementById('marrow').hidden"));
            // The shipped blood model sees no plasma cells: the page says "not measured", not "0 %".
            Assert.Equal("not measured", await page.EvaluateExpressionAsync<string>("document.getElementById('plasma-percent').textContent"));
            Assert.Equal("megakaryocyte, plasma_cell", await page.EvaluateExpressionAsync<string>("document.getElementById('not-measured').textContent"));
            Assert.Empty(errors);
            await host.StopAsync();
        }
        finally { Directory.Delete(state, recursive: true); }
    }

    [Fact]
    public async Task From_another_machine_the_page_asks_for_the_web_token_and_goes_live_only_with_the_right_one()
    {
        const string token = "ward-token-for-the-browser-test";
        var state = Directory.CreateTempSubdirectory("edgecounter-dash-").FullName;
        try
        {
            using var host = ServiceHost.Build(ServiceEndToEndTests.Args(FreePort.Next(), state,
                "--EdgeCounter:Web:Urls=http://0.0.0.0:0", $"--EdgeCounter:Web:Token={token}"));
            await host.StartAsync();
            var port = new Uri(host.Services.GetRequiredService<WebEndpoints>().BoundUrls.Single()).Port;
            var url = $"http://{WebEndpointsTests.NetworkAddress()}:{port}"; // as a ward PC would open it
            await using var browser = await LaunchBrowserAsync();
            var wait = new WaitForFunctionOptions { Timeout = 60_000, PollingInterval = 200 };
            async Task<IPage> OpenAsync(string answer)
            {
                var page = await browser.NewPageAsync();
                page.Dialog += async (_, e) => { output.WriteLine($"prompt: {e.Dialog.Message}"); await e.Dialog.Accept(answer); };
                await page.GoToAsync(url + "/");
                return page;
            }
            await using (var wrong = await OpenAsync("not-the-token"))
                await wrong.WaitForFunctionAsync("() => document.getElementById('error').textContent.includes('refused')", wait);
            await using (var right = await OpenAsync(token))
            {
                await right.WaitForFunctionAsync("() => document.getElementById('available').textContent === 'online'", wait);
                await right.WaitForFunctionAsync("() => Number(document.querySelector('#totals tr[data-label=\"RBC\"] td.count')?.textContent) > 0", wait);
            }
            await host.StopAsync();
        }
        finally { Directory.Delete(state, recursive: true); }
    }
}
