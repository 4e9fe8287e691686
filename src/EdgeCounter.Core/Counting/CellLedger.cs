using EdgeCounter.Detection;

namespace EdgeCounter.Counting;

public enum CellStatus : byte
{
    /// <summary>In the totals under its label.</summary>
    Counted,

    /// <summary>Rejected in review: in no total.</summary>
    Rejected,

    /// <summary>Counted cut by the frame edge, then again whole in a later field (the count moved to that cell).</summary>
    Moved,
}

/// <summary>One counted cell as review sees it. Box: frame pixels of the field it was counted in.</summary>
/// <param name="Label">The label it is counted under now (after review); the detector's own is <paramref name="DetectedLabel"/>.</param>
/// <param name="MovedTo">For a moved cell, the id of the cell its count moved to; 0 otherwise.</param>
public readonly record struct CountedCell(long CellId, long FieldId, string Label, string DetectedLabel, float Score, BoxF Box,
    CellStatus Status, long MovedTo = 0);

/// <summary>
/// The cells of one session by id: ids 1, 2, 3... in the order counted (a field's new cells in detection order), so that
/// review can name any cell. Pure logic, not thread-safe (the session owns it). Bounded: past <see cref="MaxCells"/> cells
/// (an endless session) cells are still counted but get id 0 and cannot be reviewed.
/// </summary>
public sealed class CellLedger
{
    public const int MaxCells = 2_000_000;
    private readonly List<CountedCell> _cells = [];
    private long _given; // ids handed out, also past the bound

    /// <summary>Cells that can be reviewed (ids 1..Count).</summary>
    public int Count => _cells.Count;

    /// <summary>Cell ids handed out (a restored session continues after them).</summary>
    public long Given => _given;

    public IReadOnlyList<CountedCell> All => _cells;

    /// <summary>Adds a field's new cells; returns the id of the first (the n-th has that + n).</summary>
    public long Add(long fieldId, IReadOnlyList<Detection.Detection> detections)
    {
        var first = _given + 1;
        foreach (var d in detections)
        {
            _given++;
            if (_cells.Count < MaxCells)
                _cells.Add(new CountedCell(_given, fieldId, d.Label, d.Label, d.Score, d.Box, CellStatus.Counted));
        }
        return first;
    }

    public bool TryGet(long cellId, out CountedCell cell)
    {
        if (cellId >= 1 && cellId <= _cells.Count && _cells[(int)(cellId - 1)].CellId == cellId)
        {
            cell = _cells[(int)(cellId - 1)];
            return true;
        }
        cell = default;
        return false;
    }

    /// <summary>A cell's count moves to cell <paramref name="movedTo"/> (a later field shows it whole): returns the label
    /// it leaves, or null when it is in no total (rejected, moved already, unknown).</summary>
    public string? MoveOut(long cellId, long movedTo)
    {
        if (!TryGet(cellId, out var cell) || cell.Status != CellStatus.Counted) return null;
        _cells[(int)(cellId - 1)] = cell with { Status = CellStatus.Moved, MovedTo = movedTo };
        return cell.Label;
    }

    /// <summary>Review's label for a cell; null rejects it.</summary>
    public void Relabel(long cellId, string? to)
    {
        if (!TryGet(cellId, out var cell) || cell.Status == CellStatus.Moved) return;
        _cells[(int)(cellId - 1)] = to is null ? cell with { Status = CellStatus.Rejected } : cell with { Label = to, Status = CellStatus.Counted };
    }

    /// <summary>Ids up to <paramref name="given"/> were handed out but their cells are not known (the ledger file lost
    /// them): the next cell gets given + 1; those cells cannot be reviewed.</summary>
    public void ContinueAfter(long given)
    {
        while (_given < given)
        {
            _given++;
            if (_cells.Count < MaxCells) _cells.Add(default); // id 0: not a reviewable cell
        }
    }

    /// <summary>Rebuilds the ledger as the ledger file had it: one entry per counted field, in order.</summary>
    public static CellLedger Replay(IEnumerable<LedgerField> fields)
    {
        var ledger = new CellLedger();
        foreach (var field in fields)
        {
            var first = ledger.Add(field.FieldId, field.Cells);
            foreach (var move in field.MovedOut) ledger.MoveOut(move.From, first + move.NewCell);
        }
        return ledger;
    }
}

/// <summary>What one counted field added to the ledger (one line of the ledger file).</summary>
public sealed record LedgerField(long FieldId, long FirstCellId, IReadOnlyList<Detection.Detection> Cells, IReadOnlyList<CellMove> MovedOut);

/// <summary>A count that moves: cell <paramref name="From"/> (counted cut earlier) is the field's new cell number
/// <paramref name="NewCell"/> (0-based among its new cells), seen whole.</summary>
public readonly record struct CellMove(long From, int NewCell);

/// <summary>A session as review sees it: its counts, every reviewable cell, the audit trail.</summary>
public sealed record SessionReview(CountsSnapshot Counts, IReadOnlyList<CountedCell> Cells, IReadOnlyList<CellCorrection> Corrections);
