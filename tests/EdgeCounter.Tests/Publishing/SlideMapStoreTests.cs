using EdgeCounter.Publishing;

namespace EdgeCounter.Tests.Publishing;

public class SlideMapStoreTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("edgecounter-map-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    [Fact]
    public void Keeps_the_latest_map_of_the_session_and_only_that_session()
    {
        var store = new SlideMapStore(_dir);
        Assert.Null(store.Load("20261202T070000Z-aaaaaaaa"));
        store.Save("20261202T070000Z-aaaaaaaa", [1, 2, 3]);
        store.Save("20261202T070000Z-aaaaaaaa", [4, 5]);
        Assert.Equal(new byte[] { 4, 5 }, new SlideMapStore(_dir).Load("20261202T070000Z-aaaaaaaa")); // survives a restart
        store.Save("20261202T080000Z-bbbbbbbb", [6]);
        Assert.Null(store.Load("20261202T070000Z-aaaaaaaa")); // the earlier session's map is gone
        Assert.Equal(new byte[] { 6 }, store.Load("20261202T080000Z-bbbbbbbb"));
        Assert.Single(Directory.GetFiles(_dir));
    }

    [Theory]
    [InlineData("../etc")]
    [InlineData("a/b")]
    [InlineData(" ")]
    public void A_session_id_that_cannot_name_a_file_is_refused(string id) =>
        Assert.ThrowsAny<ArgumentException>(() => new SlideMapStore(_dir).PathFor(id));
}
