using OpenCvSharp;

namespace EdgeCounter.Simulation;

/// <summary>
/// Draws a slide lazily: 256x256 tiles are rendered on first use from the cells that reach into them and kept
/// in a bounded LRU cache, so memory stays flat however long the stage wanders. A field is composed by copying
/// from tiles. Not thread-safe: one renderer per thread.
/// </summary>
internal sealed class SlideRenderer : IDisposable
{
    public const int TileSize = 256;

    private readonly int _capacity;
    private readonly Dictionary<long, LinkedListNode<(long Key, Mat Tile)>> _index = new();
    private readonly LinkedList<(long Key, Mat Tile)> _lru = new();
    private readonly float[] _density = new float[TileSize * TileSize * 3];

    public SlideRenderer(ulong slideSeed, SlideProfile profile, double micrometresPerPixel, int widthPixels, int heightPixels,
        double? noiseSigma, int tileCacheCapacity)
    {
        Layout = new SlideLayout(slideSeed, profile, micrometresPerPixel, widthPixels, heightPixels);
        Palette = new StainPalette(slideSeed, noiseSigma);
        Textures = new SlideTextures(slideSeed, micrometresPerPixel);
        _capacity = tileCacheCapacity;
    }

    public SlideLayout Layout { get; }
    public StainPalette Palette { get; }
    public SlideTextures Textures { get; }

    /// <summary>Tiles rendered so far (cache misses); for tests and diagnostics.</summary>
    public long TilesRendered { get; private set; }

    public int CachedTiles => _lru.Count;

    /// <summary>Copies slide region (x, y, dst.Width, dst.Height) into dst (BGR 8UC3), without camera effects.</summary>
    public unsafe void Compose(Mat dst, int x, int y)
    {
        if (dst.Type() != MatType.CV_8UC3) throw new ArgumentException("dst must be 8-bit BGR", nameof(dst));
        var w = dst.Width;
        var h = dst.Height;
        var tx0 = FloorDiv(x, TileSize);
        var ty0 = FloorDiv(y, TileSize);
        var tx1 = FloorDiv(x + w - 1, TileSize);
        var ty1 = FloorDiv(y + h - 1, TileSize);
        for (var ty = ty0; ty <= ty1; ty++)
            for (var tx = tx0; tx <= tx1; tx++)
            {
                var tile = Tile(tx, ty);
                var left = Math.Max(x, tx * TileSize);
                var top = Math.Max(y, ty * TileSize);
                var right = Math.Min(x + w, (tx + 1) * TileSize);
                var bottom = Math.Min(y + h, (ty + 1) * TileSize);
                // Row copies through the pixel pointers: no sub-Mat headers (native + managed) per tile per frame.
                var bytes = (right - left) * 3;
                for (var row = top; row < bottom; row++)
                    Buffer.MemoryCopy((byte*)tile.Ptr(row - ty * TileSize) + (left - tx * TileSize) * 3,
                        (byte*)dst.Ptr(row - y) + (left - x) * 3, bytes, bytes);
            }
    }

    /// <summary>
    /// Renders not-yet-cached tiles of the given regions (in order) until the deadline passes. Used while the
    /// stage rests, so the tiles of the path ahead are ready before it moves. Output never depends on it.
    /// </summary>
    public void Prefetch(IEnumerable<Rect> regions, System.Diagnostics.Stopwatch clock, TimeSpan budget)
    {
        var warmed = 0;
        foreach (var r in regions)
        {
            for (var ty = FloorDiv(r.Y, TileSize); ty <= FloorDiv(r.Y + r.Height - 1, TileSize); ty++)
                for (var tx = FloorDiv(r.X, TileSize); tx <= FloorDiv(r.X + r.Width - 1, TileSize); tx++)
                {
                    if (clock.Elapsed >= budget || warmed >= _capacity / 2) return;
                    var key = TileKey(tx, ty);
                    if (_index.ContainsKey(key)) continue;
                    Tile(tx, ty);
                    warmed++;
                }
        }
    }

    private static int FloorDiv(int a, int b) => (int)Math.Floor((double)a / b);

    private Mat Tile(int tx, int ty)
    {
        var key = TileKey(tx, ty);
        if (_index.TryGetValue(key, out var node))
        {
            _lru.Remove(node);
            _lru.AddFirst(node);
            return node.Value.Tile;
        }
        var tile = RenderTile(tx * TileSize, ty * TileSize);
        TilesRendered++;
        _index[key] = _lru.AddFirst((key, tile));
        while (_lru.Count > _capacity)
        {
            var last = _lru.Last!;
            _lru.RemoveLast();
            _index.Remove(last.Value.Key);
            last.Value.Tile.Dispose();
        }
        return tile;
    }

    private unsafe Mat RenderTile(int left, int top)
    {
        var density = _density;
        var bg = Palette.Background;
        fixed (float* d = density)
        fixed (float* film = Textures.Film.Values)
        {
            for (var y = 0; y < TileSize; y++)
            {
                // Plasma film: faint pink, thicker and thinner in broad patches.
                var filmRow = film + (((top + y) & NoiseTexture.Mask) << 9);
                var row = d + y * TileSize * 3;
                for (var x = 0; x < TileSize; x++)
                {
                    var k = 0.7f + 0.6f * filmRow[(left + x) & NoiseTexture.Mask];
                    row[x * 3] = bg.B * k;
                    row[x * 3 + 1] = bg.G * k;
                    row[x * 3 + 2] = bg.R * k;
                }
            }
        }
        foreach (var cell in Layout.CellsIn(left, top, left + TileSize, top + TileSize))
            cell.Paint(density, left, top, TileSize, TileSize, Palette, Textures);

        var tile = new Mat(TileSize, TileSize, MatType.CV_8UC3);
        fixed (float* d = density)
        fixed (byte* lutB = Palette.Lut[0])
        fixed (byte* lutG = Palette.Lut[1])
        fixed (byte* lutR = Palette.Lut[2])
        {
            for (var y = 0; y < TileSize; y++)
            {
                var row = (byte*)tile.Ptr(y);
                var src = d + y * TileSize * 3;
                for (var x = 0; x < TileSize * 3; x += 3)
                {
                    row[x] = lutB[Quantise(src[x])];
                    row[x + 1] = lutG[Quantise(src[x + 1])];
                    row[x + 2] = lutR[Quantise(src[x + 2])];
                }
            }
        }
        return tile;
    }

    private static int Quantise(float od)
    {
        var q = (int)(od * StainPalette.LutScale + 0.5f);
        return q < 0 ? 0 : q > StainPalette.LutMax ? StainPalette.LutMax : q;
    }

    public void Dispose()
    {
        foreach (var (_, tile) in _lru) tile.Dispose();
        _lru.Clear();
        _index.Clear();
    }

    private static long TileKey(int tx, int ty) => ((long)ty << 32) ^ (uint)tx;
}
