namespace EdgeCounter.Counting;

/// <summary>A read-only map that enumerates in a given key order (report groups, marrow categories): a Dictionary's
/// enumeration order is not guaranteed, and the order is what a report shows.</summary>
internal sealed class OrderedMap<TValue>(IReadOnlyList<string> order, IReadOnlyDictionary<string, TValue> map) : IReadOnlyDictionary<string, TValue>
{
    public TValue this[string key] => map[key];
    public IEnumerable<string> Keys => order;
    public IEnumerable<TValue> Values => order.Select(k => map[k]);
    public int Count => order.Count;
    public bool ContainsKey(string key) => map.ContainsKey(key);
    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out TValue value) => map.TryGetValue(key, out value);
    public IEnumerator<KeyValuePair<string, TValue>> GetEnumerator() => order.Select(k => new KeyValuePair<string, TValue>(k, map[k])).GetEnumerator();
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}
