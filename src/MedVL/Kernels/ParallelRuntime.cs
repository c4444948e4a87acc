using System.Runtime.CompilerServices;

namespace MedVL.Kernels;

/// <summary>
/// One unit of a parallel loop. Implement it on a struct holding the kernel's pointers and sizes;
/// <see cref="ParallelRuntime.For{TJob}(int, ref TJob, int)"/> calls <see cref="Execute"/> once per index
/// through a generic instantiation, so no delegate or closure is allocated per call.
/// </summary>
public interface IParallelJob
{
    void Execute(int index);
}

/// <summary>
/// Low-overhead parallel-for shared by all kernels (llm.c / OpenMP "parallel for" semantics).
/// <para>
/// Workers are persistent threads grouped in teams of <c>Environment.ProcessorCount - 1</c>; the calling thread is
/// always one participant. Workers spin for a short while after each loop (so back-to-back small ops do not pay a
/// kernel wake-up of tens of microseconds to milliseconds), then block on a monitor. Indices are handed out with one
/// interlocked increment each (dynamic scheduling), so uneven tiles balance themselves.
/// </para>
/// <para>
/// Concurrency: each call rents a whole team from a small lock-free slot array and returns it afterwards, so two
/// requests running at once each get their own team (a new team is created only when all are busy). A call made from
/// inside a parallel region (nested) runs inline on the calling thread, which can never deadlock.
/// The only settings are per call (<c>maxThreads</c>); the runtime holds no mutable configuration.
/// </para>
/// </summary>
public static unsafe class ParallelRuntime
{
    /// <summary>Threads a call uses when <c>maxThreads &lt;= 0</c>.</summary>
    public static int DefaultThreads => Environment.ProcessorCount;

    [ThreadStatic] private static bool t_inParallelRegion;

    // Idle teams. A slot holds a team or null; renting swaps null in, returning swaps the team back.
    private static readonly WorkerTeam?[] s_idleTeams = new WorkerTeam?[8];

    /// <summary>Resolve a per-call thread request: &lt;= 0 means <see cref="DefaultThreads"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ResolveThreads(int maxThreads) =>
        maxThreads <= 0 ? DefaultThreads : Math.Min(maxThreads, Math.Max(DefaultThreads, 1) * 4);

    /// <summary>True while the current thread executes inside a <see cref="For{TJob}"/> region.</summary>
    public static bool InParallelRegion => t_inParallelRegion;

    /// <summary>
    /// Run <c>job.Execute(i)</c> for every i in [0, count), on up to <paramref name="maxThreads"/> threads
    /// (&lt;= 0: all processors). Returns when all indices are done. The job struct is read by reference by all
    /// participants, so it must not be mutated by <see cref="IParallelJob.Execute"/> (write through its pointers).
    /// The first exception thrown by any index is rethrown here after the loop completes.
    /// </summary>
    public static void For<TJob>(int count, ref TJob job, int maxThreads = 0) where TJob : struct, IParallelJob
    {
        if (count <= 0) return;
        int threads = Math.Min(ResolveThreads(maxThreads), count);
        if (threads <= 1 || t_inParallelRegion || Environment.ProcessorCount <= 1)
        {
            for (int i = 0; i < count; i++) job.Execute(i);
            return;
        }

        // Copy to a stack local: a stack slot never moves, so its address is safe to hand to workers
        // (the GC still tracks any object references it holds).
        TJob local = job;
        WorkerTeam team = RentTeam();
        try
        {
            t_inParallelRegion = true;
            team.Run(&Invoke<TJob>, Unsafe.AsPointer(ref local), count, threads - 1);
        }
        finally
        {
            t_inParallelRegion = false;
            ReturnTeam(team);
        }
    }

    /// <summary>Split [0, length) into about <paramref name="chunks"/> ranges of whole multiples of <paramref name="align"/>.</summary>
    public static int ChunkSize(int length, int chunks, int align = 1)
    {
        if (chunks < 1) chunks = 1;
        int per = (length + chunks - 1) / chunks;
        per = (per + align - 1) / align * align;
        return Math.Max(per, align);
    }

    private static void Invoke<TJob>(void* job, int index) where TJob : struct, IParallelJob
        => Unsafe.AsRef<TJob>(job).Execute(index);

    private static WorkerTeam RentTeam()
    {
        var slots = s_idleTeams;
        for (int i = 0; i < slots.Length; i++)
        {
            if (Volatile.Read(ref slots[i]) is null) continue;
            var t = Interlocked.Exchange(ref slots[i], null);
            if (t is not null) return t;
        }
        return new WorkerTeam(Math.Max(Environment.ProcessorCount - 1, 1));
    }

    private static void ReturnTeam(WorkerTeam team)
    {
        var slots = s_idleTeams;
        for (int i = 0; i < slots.Length; i++)
            if (Interlocked.CompareExchange(ref slots[i], team, null) is null) return;
        team.Shutdown(); // more concurrent callers than slots: let this team's threads exit
    }

    /// <summary>
    /// A fixed set of worker threads that execute one loop at a time for the caller that rented it.
    /// Loop state is one 64-bit word: (generation &lt;&lt; 32) | next index. An index is claimed with a compare-exchange
    /// that also checks the generation, so a worker that wakes late (e.g. descheduled on an oversubscribed machine)
    /// can never claim an index of a later loop with the fields of an earlier one, and the caller never waits for a
    /// worker that has not started: it only waits until every index has been executed.
    /// </summary>
    private sealed class WorkerTeam
    {
        // How long an idle worker spins before blocking (~0.1-0.3 ms): covers the gap between consecutive kernels
        // of one forward pass without burning a core when the engine is idle.
        private const int SpinIterations = 2_000;

        private readonly int _workerCount;
        private readonly object _sleepLock = new();
        private int _sleepers;
        private long _state;
        private bool _shutdown;

        // The current loop; written by the caller before _state publishes the new generation (Interlocked = full fence).
        private delegate*<void*, int, void> _invoke;
        private void* _job;
        private int _count;
        private int _activeWorkers;
        private int _done;
        private Exception? _error;

        public WorkerTeam(int workerCount)
        {
            _workerCount = workerCount;
            for (int w = 0; w < workerCount; w++)
            {
                int id = w;
                var t = new Thread(() => WorkerLoop(id), 256 * 1024)
                {
                    IsBackground = true,
                    Name = "MedVL.Kernels worker " + id,
                };
                t.Start();
            }
        }

        private static int GenerationOf(long state) => (int)(state >> 32);

        public void Run(delegate*<void*, int, void> invoke, void* job, int count, int helpers)
        {
            _invoke = invoke;
            _job = job;
            _count = count;
            _activeWorkers = Math.Min(helpers, _workerCount);
            _done = 0;
            _error = null;
            int gen = GenerationOf(Volatile.Read(ref _state)) + 1;
            Interlocked.Exchange(ref _state, (long)gen << 32);
            if (Volatile.Read(ref _sleepers) > 0)
                lock (_sleepLock) Monitor.PulseAll(_sleepLock);

            Drain(gen, invoke, job, count);

            int spins = 0;
            while (Volatile.Read(ref _done) < count)
            {
                if (++spins < 2048) Thread.SpinWait(4);
                else Thread.Yield();
            }
            _job = null;
            var err = _error;
            if (err is not null)
            {
                _error = null;
                System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(err).Throw();
            }
        }

        private void Drain(int gen, delegate*<void*, int, void> invoke, void* job, int count)
        {
            while (true)
            {
                long s = Volatile.Read(ref _state);
                int index = (int)s;
                if (GenerationOf(s) != gen || index >= count) return;
                if (Interlocked.CompareExchange(ref _state, s + 1, s) != s) continue;
                try
                {
                    invoke(job, index);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref _error, e, null);
                }
                Interlocked.Increment(ref _done);
            }
        }

        public void Shutdown()
        {
            Volatile.Write(ref _shutdown, true);
            Interlocked.Add(ref _state, 1L << 32);
            lock (_sleepLock) Monitor.PulseAll(_sleepLock);
        }

        private void WorkerLoop(int id)
        {
            t_inParallelRegion = true; // nested For calls from a job run inline
            int seen = 0; // the initial generation: a worker that starts late must still see the first loop
            while (true)
            {
                int spins = 0;
                long s;
                while (GenerationOf(s = Volatile.Read(ref _state)) == seen)
                {
                    if (++spins < SpinIterations) { Thread.SpinWait(8); continue; }
                    lock (_sleepLock)
                    {
                        Interlocked.Increment(ref _sleepers);
                        while (GenerationOf(s = Volatile.Read(ref _state)) == seen) Monitor.Wait(_sleepLock);
                        Interlocked.Decrement(ref _sleepers);
                    }
                    break;
                }
                seen = GenerationOf(s);
                if (Volatile.Read(ref _shutdown)) return;
                // Fields read after the generation was observed belong to this loop or a later one; a later one
                // makes every claim below fail, so a stale read is harmless.
                if (id < Volatile.Read(ref _activeWorkers)) Drain(seen, _invoke, _job, _count);
            }
        }
    }
}
