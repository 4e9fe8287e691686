using EdgeCounter.Acquisition;
using EdgeCounter.Hosting;

namespace EdgeCounter.IntegrationTests.Hosting;

public class WatchdogTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(60), StuckAfter = TimeSpan.FromSeconds(30);

    [Fact]
    public void A_streaming_pipeline_that_beats_is_fed()
        => Assert.True(WatchdogService.ShouldPing(TimeSpan.FromSeconds(1), SourceState.Streaming, TimeSpan.Zero, Interval, StuckAfter));

    [Fact]
    public void A_hung_capture_loop_is_not_fed_so_systemd_restarts_it()
        => Assert.False(WatchdogService.ShouldPing(TimeSpan.FromSeconds(61), SourceState.Streaming, TimeSpan.Zero, Interval, StuckAfter));

    [Fact]
    public void A_stuck_detector_is_not_fed_even_while_frames_flow()
        => Assert.False(WatchdogService.ShouldPing(TimeSpan.FromSeconds(1), SourceState.Streaming, TimeSpan.FromSeconds(31), Interval, StuckAfter));

    [Fact]
    public void A_camera_being_reconnected_is_not_a_hang()
        => Assert.True(WatchdogService.ShouldPing(TimeSpan.FromMinutes(5), SourceState.Reconnecting, TimeSpan.Zero, Interval, StuckAfter));
}
