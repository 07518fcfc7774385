using System.Buffers.Binary;
using System.Text.Json.Nodes;
using TorchSharp;
using TransformerForge.Data;
using TransformerForge.IO;
using TransformerForge.Tests.Data;
using TransformerForge.Training;
using static TorchSharp.torch;

namespace TransformerForge.Tests.Training;

/// <summary>
/// Pins what Stryker's survivors in Training/ asked for (issue 11, deliverable 4): the CUDA seed derivation and state
/// layout, every refusal of <see cref="TrainingRng.Check"/>, the run lock's re-entrancy and stale-lock rules, the
/// checkpoint's recovery order and optimizer-step checks, and the data description's messages and differences.
/// </summary>
[Collection(SerialCollection.Name)]   // restores and reads the global torch generator
public class TrainingRngAndDataSpecMutantTests
{
    // ---- TrainingRng -----------------------------------------------------------------------------------------------

    /// <summary>Values from an independent (Python) implementation of the same SplitMix64 finaliser.</summary>
    [Theory]
    [InlineData(7, 0, 684015825046555601L)]
    [InlineData(7, 3, 8048262172644275378L)]
    [InlineData(-1, 5, 2662721202479800082L)]
    [InlineData(0, 0, 146846928924908304L)]
    [InlineData(123456, int.MaxValue, 7476055223637649464L)]
    public void CudaSeedIsTheSplitMixOfSeedAndStep(int seed, int step, long expected) =>
        Assert.Equal(expected, TrainingRng.CudaSeed(seed, step));

    [Fact]
    public void CudaStateIsTheSeedLittleEndianThenAZeroOffset()
    {
        using var t = TrainingRng.CudaState(0x0102030405060708L);
        Assert.Equal(ScalarType.Byte, t.dtype);
        Assert.Equal(new long[] { TrainingRng.CudaStateBytes }, t.shape);
        var bytes = t.bytes.ToArray();
        Assert.Equal(0x0102030405060708UL, BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        Assert.All(bytes[8..], b => Assert.Equal(0, b));
    }

    [Fact]
    public void CaptureOnTheCpuHoldsTheCpuGeneratorOnlyAndRestoreReplaysIt()
    {
        var state = TrainingRng.Capture(CPU, seed: 7, step: 3);
        try
        {
            Assert.Equal(new[] { TrainingRng.CpuKey }, state.Keys.ToArray());
            using var first = torch.rand(5, dtype: ScalarType.Float64);
            TrainingRng.Restore(state, CPU);
            using var again = torch.rand(5, dtype: ScalarType.Float64);
            Assert.Equal(first.data<double>().ToArray(), again.data<double>().ToArray());
            TrainingRng.BeginStep(CPU, 7, 3);   // a no-op on the CPU: the generator is not reseeded
            TrainingRng.Restore(state, CPU);
            TrainingRng.BeginStep(CPU, 7, 3);
            using var third = torch.rand(5, dtype: ScalarType.Float64);
            Assert.Equal(first.data<double>().ToArray(), third.data<double>().ToArray());
        }
        finally { foreach (var t in state.Values) t.Dispose(); }
    }

    static Dictionary<string, Tensor> ValidState()
    {
        var d = new Dictionary<string, Tensor> { [TrainingRng.CpuKey] = torch.random.get_rng_state() };
        return d;
    }

    static string CheckFails(Dictionary<string, Tensor> state)
    {
        try { return Assert.Throws<InvalidDataException>(() => TrainingRng.Check(state, "rng.safetensors")).Message; }
        finally { foreach (var t in state.Values) t.Dispose(); }
    }

    [Fact]
    public void CheckAcceptsTheCpuStateAloneAndWithACudaState()
    {
        var state = ValidState();
        try
        {
            TrainingRng.Check(state, "x");
            state[TrainingRng.CudaKey] = TrainingRng.CudaState(5);
            TrainingRng.Check(state, "x");
        }
        finally { foreach (var t in state.Values) t.Dispose(); }
    }

    [Fact]
    public void CheckRefusesEachWrongEntryNamingIt()
    {
        long n;
        using (var s = torch.random.get_rng_state()) n = s.NumberOfElements;

        Assert.Equal("rng.safetensors has no 'torch_cpu' generator state",
            CheckFails(new Dictionary<string, Tensor> { [TrainingRng.CudaKey] = TrainingRng.CudaState(1) }));
        // Right size, wrong dtype; right count, two dimensions; one byte short.
        Assert.Equal($"rng.safetensors: 'torch_cpu' must be {n} bytes (uint8) of generator state, but it is Int8 [{n}]",
            CheckFails(new Dictionary<string, Tensor> { [TrainingRng.CpuKey] = torch.zeros(n, dtype: ScalarType.Int8) }));
        Assert.Contains($"but it is Byte [1, {n}]",
            CheckFails(new Dictionary<string, Tensor> { [TrainingRng.CpuKey] = torch.zeros(1, n, dtype: ScalarType.Byte) }));
        Assert.Contains($"but it is Byte [{n - 1}]",
            CheckFails(new Dictionary<string, Tensor> { [TrainingRng.CpuKey] = torch.zeros(n - 1, dtype: ScalarType.Byte) }));

        Dictionary<string, Tensor> WithCuda(Tensor cuda) { var s = ValidState(); s[TrainingRng.CudaKey] = cuda; return s; }
        Assert.Equal("rng.safetensors: 'torch_cuda' must be 16 bytes (uint8) of CUDA generator state, but it is Int8 [16]",
            CheckFails(WithCuda(torch.zeros(16, dtype: ScalarType.Int8))));
        Assert.Contains("but it is Byte [2, 8]", CheckFails(WithCuda(torch.zeros(2, 8, dtype: ScalarType.Byte))));
        Assert.Contains("but it is Byte [17]", CheckFails(WithCuda(torch.zeros(17, dtype: ScalarType.Byte))));

        var extra = ValidState();
        extra["torch_mps"] = torch.zeros(1);
        extra["other"] = torch.zeros(1);
        Assert.Equal("rng.safetensors has unknown entries: torch_mps, other", CheckFails(extra));
    }

    // ---- TrainingDataSpec ------------------------------------------------------------------------------------------

    [Fact]
    public void ForTextAndForTaskFillTheirFields()
    {
        var text = TrainingDataSpec.ForText("corpus.txt", "chars", 8, "abc");
        Assert.Equal(TrainingDataSpec.TextKind, text.Kind);
        Assert.Equal(Path.GetFullPath("corpus.txt"), text.Path);
        Assert.Equal(("chars", 8, "abc"), (text.Tokenizer, text.SeqLen, text.ContentSha256));

        var task = TrainingDataSpec.ForTask("recall", new SyntheticTaskOptions(Length: 3, Symbols: 4, Keys: 5, ReverseAnswer: true));
        Assert.Equal((TrainingDataSpec.TaskKind, "recall", 3, 4, 5, true), (task.Kind, task.Task, task.Length, task.Symbols, task.Keys, task.ReverseAnswer));
        Assert.Equal(new SyntheticTaskOptions(3, 4, 5, true), task.TaskOptions);
        var bare = TrainingDataSpec.ForTask("copy");
        Assert.Equal(((int?)null, (int?)null, (int?)null, (bool?)null), (bare.Length, bare.Symbols, bare.Keys, bare.ReverseAnswer));
    }

    [Fact]
    public void OpenNamesWhatIsMissing()
    {
        using var tmp = new TempDir();
        var corpus = tmp.File("corpus.txt", "hello world, hello world, hello world, hello world");
        string Fails(TrainingDataSpec s) => Assert.Throws<InvalidDataException>(() => s.Open().Dispose()).Message;

        Assert.Equal("unknown data kind 'image' (expected 'text' or 'task')", Fails(new TrainingDataSpec { Kind = "image" }));
        Assert.Equal("task data needs a task name", Fails(new TrainingDataSpec { Kind = "task" }));
        Assert.Equal("text data needs a path", Fails(new TrainingDataSpec { Kind = "text" }));
        Assert.Equal("text data needs a tokenizer", Fails(new TrainingDataSpec { Kind = "text", Path = corpus, SeqLen = 4 }));
        Assert.Equal("text data needs seq_len", Fails(new TrainingDataSpec { Kind = "text", Path = corpus, Tokenizer = "chars" }));
        using (var ok = TrainingDataSpec.ForText(corpus, "chars", 4).Open()) Assert.NotNull(ok);
        using (var task = TrainingDataSpec.ForTask(SyntheticTasks.Copy).Open()) Assert.NotNull(task);

        var gone = Path.Combine(tmp.Path, "gone.txt");
        var e = Assert.Throws<FileNotFoundException>(() => TrainingDataSpec.ForText(gone, "chars", 4).Open().Dispose());
        Assert.Equal($"the corpus '{gone}' is gone; give its new location with --data (its content must be the same)", e.Message);
        var withRelative = TrainingDataSpec.ForText(gone, "chars", 4) with { RelativePath = "../gone.txt" };
        e = Assert.Throws<FileNotFoundException>(() => withRelative.Open(checkpointDirectory: tmp.Path).Dispose());
        Assert.Contains("is gone (nor at '../gone.txt' from the checkpoint); give", e.Message);
        // A relative path is only followed from a checkpoint directory.
        var found = TrainingDataSpec.ForText(gone, "chars", 4) with { RelativePath = "corpus.txt" };
        Assert.Throws<FileNotFoundException>(() => found.Open().Dispose());
        using (var moved = found.Open(checkpointDirectory: tmp.Path)) Assert.NotNull(moved);
        // A folder corpus found by its relative path.
        Directory.CreateDirectory(Path.Combine(tmp.Path, "folder"));
        File.WriteAllText(Path.Combine(tmp.Path, "folder", "a.txt"), "hello world, hello world, hello world, hello world");
        var folder = TrainingDataSpec.ForText(gone, "chars", 4) with { RelativePath = "folder" };
        using (var f = folder.Open(checkpointDirectory: tmp.Path)) Assert.NotNull(f);
    }

    [Fact]
    public void OpenUsesTheSavedTokenizerWhenGiven()
    {
        using var tmp = new TempDir();
        var wide = tmp.File("wide.txt", "abcdefghijklmnopqrstuvwxyz abcdefghijklmnopqrstuvwxyz");
        var corpus = tmp.File("corpus.txt", "abcabcabcabcabcabcabcabcabcabcabcabcabcabc");
        var saved = Path.Combine(tmp.Path, "tok");
        Directory.CreateDirectory(saved);
        Tokenizers.CreateFromCorpus("chars", wide).Save(saved);
        var spec = TrainingDataSpec.ForText(corpus, "chars", 4);
        using var fromSaved = spec.Open(tokenizerDirectory: saved);
        using var fromCorpus = spec.Open();
        Assert.Equal(Tokenizers.Load(saved).VocabSize, fromSaved.VocabSize);
        Assert.True(fromSaved.VocabSize > fromCorpus.VocabSize, $"{fromSaved.VocabSize} vs {fromCorpus.VocabSize}");
    }

    [Fact]
    public void AChangedCorpusIsRefusedWithBothHashes()
    {
        using var tmp = new TempDir();
        var corpus = tmp.File("corpus.txt", "hello world, hello world, hello world, hello world");
        var hash = CorpusFiles.ContentSha256(corpus);
        using (TrainingDataSpec.ForText(corpus, "chars", 4, hash).Open()) { }
        File.AppendAllText(corpus, "!");
        var e = Assert.Throws<InvalidDataException>(() => TrainingDataSpec.ForText(corpus, "chars", 4, hash).Open().Dispose());
        Assert.Equal($"the corpus at '{corpus}' has changed since the run started (content SHA-256 {CorpusFiles.ContentSha256(corpus)}, expected {hash})", e.Message);
    }

    [Fact]
    public void WithMovedCorpusNeedsATextRunWithAHash()
    {
        Assert.Equal("a synthetic task has no corpus to move",
            Assert.Throws<ArgumentException>(() => TrainingDataSpec.ForTask("copy") with { ContentSha256 = "x" } is var t ? t.WithMovedCorpus("a") : null).Message);
        Assert.Equal("this checkpoint records no content hash of its corpus, so a moved corpus cannot be verified",
            Assert.Throws<ArgumentException>(() => TrainingDataSpec.ForText("a", "chars", 4).WithMovedCorpus("a")).Message);
    }

    [Fact]
    public void DifferencesNameEveryChangedField()
    {
        var a = new TrainingDataSpec { Kind = "task", Task = "copy", Length = 3, Symbols = 4, Keys = 5, ReverseAnswer = false, Tokenizer = "t", SeqLen = 8 };
        Assert.Empty(a.Differences(a with { }));
        Assert.Equal(new[] { "data kind 'task' → 'text'" }, a.Differences(a with { Kind = "text" }));
        Assert.Equal(new[] { "tokenizer 't' → none" }, a.Differences(a with { Tokenizer = null }));
        Assert.Equal(new[] { "seq_len '8' → '9'" }, a.Differences(a with { SeqLen = 9 }));
        Assert.Equal(new[] { "task 'copy' → 'sort'" }, a.Differences(a with { Task = "sort" }));
        Assert.Equal(new[] { "task length '3' → '4'" }, a.Differences(a with { Length = 4 }));
        Assert.Equal(new[] { "task symbols '4' → '5'" }, a.Differences(a with { Symbols = 5 }));
        Assert.Equal(new[] { "task keys '5' → '6'" }, a.Differences(a with { Keys = 6 }));
        Assert.Equal(new[] { "reverse_answer 'False' → 'True'" }, a.Differences(a with { ReverseAnswer = true }));
        // Tasks have no corpus: their paths are not compared.
        Assert.Empty(a.Differences(a with { Path = "/x" }));

        var t = TrainingDataSpec.ForText("/data/a.txt", "chars", 8, "h1");
        // Both hashed: the content decides, wherever the corpus lies.
        Assert.Empty(t.Differences(t with { Path = "/elsewhere/a.txt" }));
        Assert.Equal(new[] { "corpus content (SHA-256) 'h1' → 'h2'" }, t.Differences(t with { ContentSha256 = "h2" }));
        // Either one unhashed: the path decides.
        Assert.Equal(new[] { "corpus '/data/a.txt' → '/elsewhere/a.txt'" }, t.Differences(t with { Path = "/elsewhere/a.txt", ContentSha256 = null }));
        Assert.Equal(new[] { "corpus '/data/a.txt' → '/elsewhere/a.txt'" }, (t with { ContentSha256 = null }).Differences(t with { Path = "/elsewhere/a.txt" }));
        Assert.Empty((t with { ContentSha256 = null }).Differences(t));
        // A text run against a task run: the kinds (and fields) differ, the corpus is not compared.
        var d = t.Differences(a with { Tokenizer = "chars", SeqLen = 8, Task = null, Length = null, Symbols = null, Keys = null, ReverseAnswer = null });
        Assert.Equal(new[] { "data kind 'text' → 'task'" }, d);
    }

    [Fact]
    public void SaveWritesSnakeCaseWithARelativePathForTextOnly()
    {
        using var tmp = new TempDir();
        var ck = Path.Combine(tmp.Path, "run", "checkpoint");
        Directory.CreateDirectory(ck);
        var text = TrainingDataSpec.ForText(Path.Combine(tmp.Path, "corpus.txt"), "chars", 8, "h");
        text.Save(ck);
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(ck, TrainingDataSpec.FileName)))!.AsObject();
        Assert.Equal(Path.Combine("..", "..", "corpus.txt"), (string?)json["relative_path"]);
        Assert.Equal(8, (int?)json["seq_len"]);
        Assert.Equal("h", (string?)json["content_sha256"]);
        Assert.False(json.ContainsKey("task"), "nulls are not written");
        Assert.Contains("\n  \"kind\": \"text\"", File.ReadAllText(Path.Combine(ck, TrainingDataSpec.FileName)));   // indented, for people
        Assert.Equal(text with { RelativePath = Path.Combine("..", "..", "corpus.txt") }, TrainingDataSpec.Load(ck));

        var task = TrainingDataSpec.ForTask("copy", new SyntheticTaskOptions(Length: 5));
        task.Save(ck);
        json = JsonNode.Parse(File.ReadAllText(Path.Combine(ck, TrainingDataSpec.FileName)))!.AsObject();
        Assert.False(json.ContainsKey("relative_path"));
        Assert.Equal(task, TrainingDataSpec.Load(ck));
        // A text spec without a path has nothing to make relative.
        var noPath = new TrainingDataSpec { Kind = "text", Tokenizer = "chars" };
        noPath.Save(ck);
        Assert.Equal(noPath, TrainingDataSpec.Load(ck));
    }

    [Fact]
    public void LoadNamesTheFileAndItsProblem()
    {
        using var tmp = new TempDir();
        var e = Assert.Throws<FileNotFoundException>(() => TrainingDataSpec.Load(tmp.Path));
        Assert.Equal($"'{tmp.Path}' has no data.json describing its training data", e.Message);
        var file = tmp.File("data.json", """{"kind": "task", "task": "copy", "colour": 1}""");
        var bad = Assert.Throws<InvalidDataException>(() => TrainingDataSpec.Load(tmp.Path));
        Assert.StartsWith($"{file} is not a valid data description: ", bad.Message);
        Assert.IsAssignableFrom<System.Text.Json.JsonException>(bad.InnerException);
    }
}

/// <summary>The run lock's re-entrancy, its file, and the stale and unreadable locks it takes over.</summary>
public class RunLockMutantTests
{
    [Fact]
    public void AFileIsNotARunDirectoryAndAMissingDirectoryIsCreated()
    {
        using var tmp = new TempDir();
        var file = tmp.File("f", "x");
        Assert.Equal($"'{file}' is a file, not a run directory", Assert.Throws<IOException>(() => RunLock.Acquire(file)).Message);
        var dir = Path.Combine(tmp.Path, "a", "b");
        using var l = RunLock.Acquire(dir);
        Assert.Equal(Path.Combine(dir, RunLock.FileName), l.Path);
        var json = JsonNode.Parse(File.ReadAllText(l.Path))!.AsObject();
        Assert.Equal(Environment.ProcessId, (int)json["pid"]!);
        Assert.StartsWith("boot+", (string)json["start"]!);
        Assert.Equal(Environment.MachineName, (string)json["host"]!);
        Assert.Matches(@"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$", (string)json["started_at"]!);
    }

    [Fact]
    public void TheSameProcessTakesTheLockAgainAndOnlyTheLastReleaseDeletesIt()
    {
        using var tmp = new TempDir();
        var a = RunLock.Acquire(tmp.Path);
        var b = RunLock.Acquire(tmp.Path);
        var c = RunLock.Acquire(Path.Combine(tmp.Path, "."));   // the same directory, spelled otherwise
        a.Dispose();
        a.Dispose();   // a second dispose of one handle releases nothing more
        Assert.True(File.Exists(a.Path));
        b.Dispose();
        Assert.True(File.Exists(a.Path));
        c.Dispose();
        Assert.False(File.Exists(a.Path));
        using (RunLock.Acquire(tmp.Path)) Assert.True(File.Exists(a.Path));
    }

    [Fact]
    public void ALockOfThisLiveProcessWithoutAStartTimeIsHeld()
    {
        using var tmp = new TempDir();
        var path = tmp.File(RunLock.FileName, $$"""{"pid": {{Environment.ProcessId}}}""");
        var e = Assert.Throws<RunLockedException>(() => RunLock.Acquire(tmp.Path));
        Assert.Equal($"run directory '{tmp.Path}' is in use by process {Environment.ProcessId} (started at an unknown time); " +
                     $"wait for it to finish, or choose another --out (if no such run is going on, delete {path})", e.Message);
        File.WriteAllText(path, $$"""{"pid": {{Environment.ProcessId}}, "started_at": "2026-01-01 10:00:00"}""");
        Assert.Contains("(started 2026-01-01 10:00:00)", Assert.Throws<RunLockedException>(() => RunLock.Acquire(tmp.Path)).Message);
        Assert.True(File.Exists(path), "a held lock is not deleted");
        // A start or started_at that is not a string is ignored, not a reason to call the lock unreadable.
        File.WriteAllText(path, $$"""{"pid": {{Environment.ProcessId}}, "start": 5, "started_at": 6}""");
        Assert.Contains("(started at an unknown time)", Assert.Throws<RunLockedException>(() => RunLock.Acquire(tmp.Path)).Message);
    }

    [Theory]
    [InlineData("""{"pid": 2147483647, "start": "boot+1"}""")]   // no such process
    [InlineData("""{"pid": 2147483647}""")]
    [InlineData("""{"pid": "x"}""")]                             // unreadable: waited for, then removed
    [InlineData("""{"pi""")]
    [InlineData("")]
    public void AStaleOrUnreadableLockIsTakenOver(string content)
    {
        using var tmp = new TempDir();
        var path = tmp.File(RunLock.FileName, content);
        using (var l = RunLock.Acquire(tmp.Path))
            Assert.Equal(Environment.ProcessId, (int)JsonNode.Parse(File.ReadAllText(path))!["pid"]!);
        Assert.False(File.Exists(path));
    }
}

/// <summary>Checkpoint recovery order, leftovers, and the optimizer-step checks of <see cref="Checkpoint.Read"/>.</summary>
public class CheckpointMutantTests
{
    static string TrainTiny(TempDir tmp, int steps = 4) => TrainingFixtures.TrainTiny(tmp, steps);

    static void SetStep(string checkpoint, int step)
    {
        var file = Path.Combine(checkpoint, TrainerState.FileName);
        var json = JsonNode.Parse(File.ReadAllText(file))!.AsObject();
        json["step"] = step;
        json.Remove("last_evaluation");
        File.WriteAllText(file, json.ToJsonString());
    }

    static void CopyDir(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }

    [Fact]
    public void TheFilesAndPathsOfACheckpoint()
    {
        Assert.Equal(new[] { "config.json", "model.safetensors", "data.json", "optimizer.safetensors", "rng.safetensors", "trainer_state.json" },
            Checkpoint.RequiredFiles);
        Assert.Equal(Path.Combine("r", "checkpoint"), Checkpoint.InRun("r"));
    }

    [Fact]
    public void ResolveRecoversTheNewestCompleteCopyAndTheNextSaveRemovesLeftovers()
    {
        using var tmp = new TempDir();
        var run = TrainTiny(tmp);
        var ck = Path.Combine(run, "checkpoint");
        Assert.Equal(ck, Checkpoint.Resolve(ck));
        Assert.Equal(ck, Checkpoint.Resolve(run));

        CopyDir(ck, Path.Combine(run, "checkpoint.old-z"));
        SetStep(Path.Combine(run, "checkpoint.old-z"), 2);
        CopyDir(ck, Path.Combine(run, "checkpoint.old-m"));            // newest step, but incomplete
        SetStep(Path.Combine(run, "checkpoint.old-m"), 9);
        File.Delete(Path.Combine(run, "checkpoint.old-m", Checkpoint.OptimizerFile));
        CopyDir(ck, Path.Combine(run, "checkpoint.old-q"));            // complete, but its state does not parse
        File.WriteAllText(Path.Combine(run, "checkpoint.old-q", TrainerState.FileName), "{");
        Directory.Move(ck, Path.Combine(run, "checkpoint.old-a"));     // step 4
        Directory.CreateDirectory(Path.Combine(run, ".checkpoint.tmp-1"));

        Assert.Equal(ck, Checkpoint.Resolve(ck));   // the checkpoint path itself
        Assert.Equal(4, TrainerState.Load(ck).Step);
        Assert.False(Directory.Exists(Path.Combine(run, "checkpoint.old-a")));
        Assert.True(Directory.Exists(Path.Combine(run, "checkpoint.old-z")));

        using (var data = TrainingFixtures.CopyTask())
        using (var trainer = Trainer.Resume(run, data, TrainingFixtures.TinyOptions(run) with { Steps = 5 }))
            trainer.Run();
        Assert.Equal(5, TrainerState.Load(ck).Step);
        Assert.Empty(Directory.GetDirectories(run, "checkpoint.old-*"));
        Assert.Empty(Directory.GetDirectories(run, ".checkpoint.tmp-*"));
    }

    [Fact]
    public void ResolveRecoversInsideARunDirectoryAndRefusesAModelDirectory()
    {
        using var tmp = new TempDir();
        var run = TrainTiny(tmp);
        var ck = Path.Combine(run, "checkpoint");
        Directory.Move(ck, Path.Combine(run, "checkpoint.old-1"));
        Assert.Equal(ck, Checkpoint.Resolve(run));

        // A model directory (config.json only) is named as such; an empty one is not a checkpoint at all.
        var model = Path.Combine(tmp.Path, "model");
        Directory.CreateDirectory(model);
        File.Copy(Path.Combine(ck, "config.json"), Path.Combine(model, "config.json"));
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Resolve(model));
        Assert.Equal($"'{model}' is a model directory but not a training checkpoint: missing model.safetensors, data.json, optimizer.safetensors, rng.safetensors, trainer_state.json", e.Message);
        var empty = Path.Combine(tmp.Path, "empty");
        Directory.CreateDirectory(empty);
        Assert.Equal($"no checkpoint at '{empty}' (expected a checkpoint directory or a run directory with checkpoint/)",
            Assert.Throws<DirectoryNotFoundException>(() => Checkpoint.Resolve(empty)).Message);
        var deeper = Path.Combine(tmp.Path, "none", "deeper");
        Assert.StartsWith($"no checkpoint at '{deeper}'", Assert.Throws<DirectoryNotFoundException>(() => Checkpoint.Resolve(deeper)).Message);
        Assert.False(Checkpoint.IsComplete(Path.Combine(tmp.Path, "none")));
    }

    [Fact]
    public void AnIncompleteCheckpointInARunDirectoryIsNamedWithWhatItLacks()
    {
        using var tmp = new TempDir();
        var ck = Path.Combine(tmp.Path, "checkpoint");
        tmp.File(Path.Combine("checkpoint", "config.json"), "{}");
        tmp.File(Path.Combine("checkpoint", "data.json"), "{}");
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Resolve(tmp.Path));
        Assert.Equal($"'{ck}' is not a complete checkpoint: missing model.safetensors, optimizer.safetensors, rng.safetensors, trainer_state.json", e.Message);
    }

    /// <summary>Checkpoint.Save called directly: the device it is told, a missing parent, a copy left renamed away, a non-IO error.</summary>
    [Fact]
    public void SaveDirectlyRecordsTheDeviceRecoversAndWrapsOnlyIOErrors()
    {
        using var tmp = new TempDir();
        using var data = TrainingFixtures.CopyTask();
        using var trainer = Trainer.Create(TrainingFixtures.TinyDecoder(), data, TrainingFixtures.TinyOptions() with { Steps = 1 });
        TrainerState State(bool noOptions = false) => new()
        {
            Step = 0, Options = noOptions ? null! : trainer.Options, Schedule = trainer.Schedule, NextLearningRate = trainer.Schedule.At(0),
        };
        // The parent does not exist yet; on CUDA the CUDA generator's state is saved too (Capture needs no GPU).
        var ck = Path.Combine(tmp.Path, "new", "run", "checkpoint");
        Checkpoint.Save(ck, trainer.Config, trainer.Model, trainer.Optimizer, State(), data, new Device(DeviceType.CUDA, 0));
        using (var rng = new DisposingDictionary(SafeTensorsTorch.Load(Path.Combine(ck, Checkpoint.RngFile))))
            Assert.Equal(new[] { TrainingRng.CpuKey, TrainingRng.CudaKey }, rng.Tensors.Keys.Order().ToArray());

        // A save while the checkpoint sits renamed away (a killed save) brings it back first and leaves no copy behind.
        Directory.Move(ck, ck + ".old-1");
        Checkpoint.Save(ck, trainer.Config, trainer.Model, trainer.Optimizer, State(), data);
        Assert.Empty(Directory.GetDirectories(Path.GetDirectoryName(ck)!, "checkpoint.old-*"));
        using (var rng = new DisposingDictionary(SafeTensorsTorch.Load(Path.Combine(ck, Checkpoint.RngFile))))
            Assert.Equal(new[] { TrainingRng.CpuKey }, rng.Tensors.Keys.ToArray());

        // Only IO errors become "could not write the checkpoint"; anything else reaches the caller as it is.
        var e = Record.Exception(() => Checkpoint.Save(ck, trainer.Config, trainer.Model, trainer.Optimizer, State(noOptions: true), data));   // a NullReferenceException mid-save
        Assert.NotNull(e);
        Assert.IsNotAssignableFrom<IOException>(e);
        Assert.True(Checkpoint.IsComplete(ck), "the previous checkpoint is left as it was");
    }

    sealed class DisposingDictionary(Dictionary<string, Tensor> tensors) : IDisposable
    {
        public Dictionary<string, Tensor> Tensors { get; } = tensors;
        public void Dispose() { foreach (var t in Tensors.Values) t.Dispose(); }
    }

    static void EditOptimizer(string ck, Action<Dictionary<string, Tensor>, string> edit)
    {
        var path = Path.Combine(ck, Checkpoint.OptimizerFile);
        var tensors = SafeTensorsTorch.Load(path);
        try
        {
            var first = tensors.Keys.Where(k => k.EndsWith(".step", StringComparison.Ordinal)).OrderBy(k => k, StringComparer.Ordinal).First();
            edit(tensors, first);
            SafeTensorsTorch.Save(path, tensors);
        }
        finally { foreach (var t in tensors.Values) t.Dispose(); }
    }

    [Fact]
    public void ReadChecksEachOptimizerStepCount()
    {
        using var tmp = new TempDir();
        var run = TrainTiny(tmp);
        var ck = Path.Combine(run, "checkpoint");
        var src = Path.Combine(ck, Checkpoint.OptimizerFile);
        using (var ok = Checkpoint.Read(ck)) Assert.Equal(4, ok.State.Step);
        var original = File.ReadAllBytes(src);

        string Fails() => Assert.Throws<InvalidDataException>(() => Checkpoint.Read(ck).Dispose()).Message;
        string name = "";

        EditOptimizer(ck, (t, n) => { name = n; t[n].Dispose(); t[n] = torch.tensor(4, dtype: ScalarType.Int32); });
        Assert.Equal($"{src}: '{name}' must be an int64 scalar, but it is Int32 []", Fails());
        File.WriteAllBytes(src, original);
        EditOptimizer(ck, (t, n) => { t[n].Dispose(); t[n] = torch.tensor(new long[] { 4, 4 }); });
        Assert.Equal($"{src}: '{name}' must be an int64 scalar, but it is Int64 [2]", Fails());
        File.WriteAllBytes(src, original);
        EditOptimizer(ck, (t, n) => { t[n].Dispose(); t[n] = torch.tensor(-1L); });
        Assert.Equal($"{src}: '{name}' is -1, but the checkpoint is at step 4 (trainer_state.json)", Fails());
        File.WriteAllBytes(src, original);
        EditOptimizer(ck, (t, n) => { t[n].Dispose(); t[n] = torch.tensor(5L); });
        Assert.Equal($"{src}: '{name}' is 5, but the checkpoint is at step 4 (trainer_state.json)", Fails());

        // Bounds are inclusive: one parameter at 0 (never updated) while the others are at 4 is accepted.
        File.WriteAllBytes(src, original);
        EditOptimizer(ck, (t, n) => { t[n].Dispose(); t[n] = torch.tensor(0L); });
        using (var ok = Checkpoint.Read(ck)) Assert.Equal(0L, ok.Optimizer[name].item<long>());

        // All at 3: the parts do not belong together; with a loss scale (fp16 skips steps) it is only an upper bound.
        EditOptimizer(ck, (t, _) => { foreach (var k in t.Keys.Where(k => k.EndsWith(".step")).ToList()) { t[k].Dispose(); t[k] = torch.tensor(3L); } });
        Assert.Equal($"{src}: the optimizer state is at step 3, but trainer_state.json says step 4; the checkpoint's parts do not belong together", Fails());
        var stateFile = Path.Combine(ck, TrainerState.FileName);
        var json = JsonNode.Parse(File.ReadAllText(stateFile))!.AsObject();
        json["loss_scale"] = 1024.0;
        File.WriteAllText(stateFile, json.ToJsonString());
        using (var fp16 = Checkpoint.Read(ck)) Assert.Equal(1024.0, fp16.State.LossScale);
    }

    [Fact]
    public void ReadRefusesABadRngStateAfterTheOptimizer()
    {
        using var tmp = new TempDir();
        var run = TrainTiny(tmp);
        var ck = Path.Combine(run, "checkpoint");
        using (var bad = torch.zeros(3, dtype: ScalarType.Byte))
            SafeTensorsTorch.Save(Path.Combine(ck, Checkpoint.RngFile), new Dictionary<string, Tensor> { [TrainingRng.CpuKey] = bad });
        var e = Assert.Throws<InvalidDataException>(() => Checkpoint.Read(ck).Dispose());
        Assert.Contains("'torch_cpu' must be", e.Message);
        Assert.Throws<InvalidDataException>(() => Checkpoint.RestoreRng(ck));
    }
}

/// <summary>What the metrics log's survivors asked for beyond <see cref="MetricsLogTests"/>.</summary>
public class MetricsLogMutantTests
{
    [Fact]
    public void EachLineIsOnDiskAsSoonAsItIsWritten()
    {
        using var tmp = new TempDir();
        using var log = MetricsLog.Open(Path.Combine(tmp.Path, "run"), keepThroughStep: 3);   // no file yet: a new log
        log.Write(new StepReport(1, 10, 2.0, 1e-3, 0.5, 10, TimeSpan.FromSeconds(1), TimeSpan.Zero, true));
        // Read while the log is open (a killed run would never dispose it).
        Assert.Equal(1, MetricsLog.Read(log.Path).Single()["step"]!.GetValue<int>());
    }

    [Fact]
    public void AResumeDropsLinesWithoutANumericStep()
    {
        using var tmp = new TempDir();
        var path = tmp.File(MetricsLog.FileName, string.Join("\n", "{\"step\":1}", "{\"step\":\"x\"}", "{\"kind\":\"train\"}", "[1]", "{\"step\":2.5}", "{\"step\":2}"));
        using (MetricsLog.Open(tmp.Path, keepThroughStep: 2)) { }
        Assert.Equal(new[] { "{\"step\":1}", "{\"step\":2}" }, File.ReadAllLines(path));
    }
}
