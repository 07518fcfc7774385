using System.Data.Common;

namespace TransformerForge.Search;

/// <summary>
/// A trial row as both study storages select it (id, number, state, spec, key, genome, plan, seed, metrics,
/// intermediate, error, worker, attempt, created, started, heartbeat, finished, seconds). Only time differs: SQLite
/// stores Unix seconds, PostgreSQL a timestamp, so each storage passes its own decoding.
/// </summary>
internal static class TrialRows
{
    public static TrialRecord Read(DbDataReader r, Func<DbDataReader, int, DateTimeOffset> time)
    {
        string? S(int i) => r.IsDBNull(i) ? null : r.GetString(i);
        DateTimeOffset? T(int i) => r.IsDBNull(i) ? null : time(r, i);
        var plan = StudyJson.Plan(r.GetString(6));
        return new TrialRecord
        {
            Id = r.GetInt64(0),
            Number = r.GetInt32(1),
            State = TrialStates.Parse(r.GetString(2)),
            Spec = StudyJson.Object(r.GetString(3)),
            Key = r.GetString(4),
            Genome = StudyJson.Object(r.GetString(5)),
            Plan = plan with { Seed = r.GetInt32(7) },
            Metrics = StudyJson.Metrics(S(8)),
            Intermediate = StudyJson.Intermediate(S(9)),
            Error = S(10),
            Worker = S(11),
            Attempt = r.GetInt32(12),
            CreatedAt = time(r, 13),
            StartedAt = T(14),
            HeartbeatAt = T(15),
            FinishedAt = T(16),
            Seconds = r.IsDBNull(17) ? null : r.GetDouble(17),
        };
    }
}
