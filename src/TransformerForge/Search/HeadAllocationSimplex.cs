namespace TransformerForge.Search;

/// <summary>
/// Archai's head allocations for a mixed Transformer++ layer (<c>get_attn_head_simplex</c> in tfpp/utils.py): the
/// points of a grid over the ops (each op gets 0 .. gridScale-1 parts, not all 0) scaled to shares that sum to 1,
/// deduplicated and sorted, keeping those that give a whole number of heads adding up to one of the layer sizes
/// (an op gets round(total_heads × share) heads, rounding half to even as numpy does). With gridScale 2 (Archai's
/// setting) each allocation splits the heads evenly over a non-empty subset of the ops.
/// </summary>
public static class HeadAllocationSimplex
{
    public static IReadOnlyList<double[]> Allocations(IReadOnlyList<int> totalHeads, int opCount, int gridScale = 2)
    {
        if (opCount < 1) throw new ArgumentOutOfRangeException(nameof(opCount), "needs at least one op");
        if (gridScale < 2) throw new ArgumentOutOfRangeException(nameof(gridScale), "must be at least 2");
        var points = new List<double[]>();
        var counts = new int[opCount];
        while (Next(counts, gridScale))
        {
            double sum = counts.Sum();
            points.Add(counts.Select(c => c / sum).ToArray());
        }
        var kept = points.Where(share => totalHeads.Any(t => share.Sum(s => Heads(t, s)) == t));
        return kept.Distinct(new RowComparer()).OrderBy(r => r, new RowComparer()).ToList();
    }

    /// <summary>Heads an op with <paramref name="share"/> of <paramref name="totalHeads"/> gets (numpy's round).</summary>
    public static int Heads(int totalHeads, double share) => (int)Math.Round(totalHeads * share, MidpointRounding.ToEven);

    /// <summary>The next grid point in numpy's product order (last op fastest), skipping all zeros; false when done.</summary>
    static bool Next(int[] counts, int gridScale)
    {
        for (int i = counts.Length - 1; i >= 0; i--)
        {
            if (++counts[i] < gridScale) return true;
            counts[i] = 0;
        }
        return false;
    }

    sealed class RowComparer : IComparer<double[]>, IEqualityComparer<double[]>
    {
        public int Compare(double[]? a, double[]? b)
        {
            for (int i = 0; i < a!.Length; i++)
            {
                int c = a[i].CompareTo(b![i]);
                if (c != 0) return c;
            }
            return 0;
        }

        public bool Equals(double[]? a, double[]? b) => Compare(a, b) == 0;

        public int GetHashCode(double[] row)
        {
            var h = new HashCode();
            foreach (var v in row) h.Add(v);
            return h.ToHashCode();
        }
    }
}
