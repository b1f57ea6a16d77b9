//! The streaming pipeline: one reader thread frames inputs into batches, a rayon pool parses
//! and processes batches in parallel, and the calling thread consumes results strictly in
//! input order; with one thread, the calling thread does all three in turn. In-flight batches
//! are capped by permits and their outputs by a byte budget, so memory stays bounded whatever
//! the input, and output is identical for any thread count.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use crate::input::frame::{FrameBatch, FrameBody, Framer, LineCounts};
use crate::input::lines::{Line, LineReader};
use crate::input::{self, InputSource};
use crate::record::llm_join::{ChunkJoiner, JoinLimits, Joined, LlmChunk, UnjoinedGroup};
use crate::record::{parse_frame_into, Made, ParseOptions, Record, RecordKind, RejectReason, RowRef};

/// Frame bytes per batch: large enough to amortise scheduling, small enough to keep latency
/// and memory low.
const BATCH_BYTES: usize = 1 << 20;
const BATCH_FRAMES: usize = 4096;
/// An input's first batch; each next one doubles up to [`BATCH_BYTES`]. A worker compiles a
/// rule's regex the first time a text needs it, and in a small input that is most of the work:
/// with one 1 MB batch a 1 MB file kept one worker busy and the other idle (92 ms median at
/// -j2); batches of 64, 128, 256 KB... share the compiling out (78 ms). 16 KB was no faster.
const FIRST_BATCH_BYTES: usize = 64 << 10;
/// Outputs that wait in memory for their turn to be consumed, in all batches together. Past
/// it, a batch that is not next in line stops until it is. A crafted export of 16 MiB lines
/// in which every record alerts makes 5 bytes of alerts per byte of input; held whole per
/// batch, 124 MB of it peaked at 850 MB at -j2.
const HELD_OUTPUT_BYTES: usize = 64 << 20;
/// A batch counts its outputs against the budget in steps of this size, and at each step the
/// batch next in line hands what it has to the consumer instead of keeping it to its end.
const OUTPUT_STEP_BYTES: usize = 1 << 20;
/// Outputs handed over and not yet consumed, past which the batch next in line waits for the
/// consumer (a slow disk or pipe).
const SENT_OUTPUT_BYTES: usize = 4 << 20;

/// What an output costs in memory while it waits for its turn to be consumed.
pub trait Weigh {
    fn weight(&self) -> usize;
}

impl Weigh for Vec<u8> {
    fn weight(&self) -> usize {
        self.capacity() + std::mem::size_of::<Self>()
    }
}

#[derive(Debug, Clone, Copy)]
pub struct PipelineOptions {
    pub threads: usize,
    pub max_line_bytes: usize,
    pub parse: ParseOptions,
    /// Incremental scans leave an unterminated last line (and an unclosed JSON document) for the
    /// next run instead of rejecting it as truncated.
    pub hold_incomplete_tail: bool,
}

/// Where an input stopped: what an incremental scan stores to resume from.
#[derive(Debug, Clone, Copy, Default)]
pub struct InputEnd {
    /// Stream offset just past the last complete line read.
    pub offset: u64,
    pub line: u64,
    /// A trailing incomplete line was left for the next run.
    pub held_tail: bool,
    /// A JSON document was still open: resume from `offset` would start inside it, so the next
    /// run must read the input from the beginning.
    pub document_open: bool,
}

/// A frame or record that was not turned into a Record.
#[derive(Debug, Clone)]
pub struct RejectNotice {
    pub file: Arc<str>,
    pub line: u64,
    pub index: Option<u32>,
    pub reason: RejectReason,
    pub detail: String,
    /// How many records it stands for (see `Rejection::count`).
    pub count: u64,
}

impl RejectNotice {
    /// What it costs in memory while it waits to be reported.
    fn weight(&self) -> usize {
        std::mem::size_of::<Self>() + self.detail.capacity()
    }
}

/// What the consumer sees, in input order.
pub enum Event<'a, T> {
    /// A batch of one input was processed: its accounting, rejections and outputs.
    Batch(&'a BatchResult<T>),
    /// An input is done: it was read to its end, or `error` says why not.
    InputDone { source: &'a InputSource, bytes_read: u64, error: Option<&'a io::Error>, end: InputEnd },
    /// After the last input: chunked LLM-log messages that never became whole.
    Unjoined(&'a [RejectNotice]),
    /// After the last input of an incremental scan: rows of chunk groups still waiting for
    /// their other chunks, to be read again by the next run instead of being reported.
    PendingChunks(&'a [RowRef]),
}

pub struct BatchResult<T> {
    pub source: Arc<InputSource>,
    /// Bytes of JSON text the batch held (for progress).
    pub text_bytes: u64,
    pub counts: LineCounts,
    pub lines_parsed: u64,
    /// Rejected lines by reason.
    pub lines_rejected: BTreeMap<RejectReason, u64>,
    pub records_by_kind: BTreeMap<RecordKind, u64>,
    pub rejections: Vec<RejectNotice>,
    pub outputs: Vec<T>,
    /// Chunks to join in input order, on the consuming thread, each with the position in
    /// `outputs` its row would have had, so a joined record's outputs land where it completes.
    chunks: Vec<(usize, LlmChunk)>,
    /// Bytes of `outputs`, `rejections` and `chunks` counted against [`HELD_OUTPUT_BYTES`].
    held: usize,
}

impl<T> BatchResult<T> {
    fn new(source: Arc<InputSource>) -> Self {
        BatchResult {
            source,
            text_bytes: 0,
            counts: LineCounts::default(),
            lines_parsed: 0,
            lines_rejected: BTreeMap::new(),
            records_by_kind: BTreeMap::new(),
            rejections: Vec::new(),
            outputs: Vec::new(),
            chunks: Vec::new(),
            held: 0,
        }
    }
}

enum Job {
    Batch { source: Arc<InputSource>, batch: FrameBatch },
    Done { source: Arc<InputSource>, bytes_read: u64, error: Option<io::Error>, end: InputEnd },
}

enum Done<T> {
    /// The outputs and rejection notices a batch made so far, handed over while it is next in
    /// line. Its counts come with the batch itself, which follows.
    Part(BatchResult<T>),
    Batch(BatchResult<T>),
    Input { source: Arc<InputSource>, bytes_read: u64, error: Option<io::Error>, end: InputEnd },
}

/// Where workers and the consumer agree on whose turn it is and how much output waits.
///
/// Only the batch next in line (the consumer's `next`) hands outputs over early, so the
/// consumer always takes them at once; every other batch keeps its own, and stops while the
/// outputs held in all exceed the budget. The batch it waits for never waits on it: that one
/// is next in line, and a batch stops only if the one next in line has started (the pool
/// takes batches in order, so it has whenever a later one runs; checked, not assumed), so no
/// wait lasts longer than the batches before it take.
#[derive(Default)]
struct Flow {
    state: Mutex<FlowState>,
    changed: Condvar,
}

#[derive(Default)]
struct FlowState {
    /// The sequence number the consumer takes next.
    next: u64,
    /// Batches a worker has started and the consumer not yet taken.
    started: BTreeSet<u64>,
    /// Output bytes counted by batches and not yet consumed.
    held: usize,
    /// Of `held`, the bytes handed over in parts.
    sent: usize,
    /// The consumer has stopped: nobody waits any more.
    closed: bool,
}

impl Flow {
    fn lock(&self) -> MutexGuard<'_, FlowState> {
        // Nothing panics while holding the lock; a poisoned one still holds whole numbers.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, FlowState>) -> MutexGuard<'a, FlowState> {
        self.changed.wait(guard).unwrap_or_else(|e| e.into_inner())
    }

    fn start(&self, seq: u64) {
        self.lock().started.insert(seq);
        self.changed.notify_all();
    }

    /// The consumer took `held` bytes of outputs (`sent` of them handed over early), and if
    /// `finished`, the whole batch: the next one is now next in line.
    fn consumed(&self, held: usize, sent: usize, finished: Option<u64>) {
        let mut st = self.lock();
        st.held = st.held.saturating_sub(held);
        st.sent = st.sent.saturating_sub(sent);
        if let Some(seq) = finished {
            st.started.remove(&seq);
            st.next = seq + 1;
        }
        drop(st);
        self.changed.notify_all();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }
}

/// Where a batch hands its outputs over before its end.
enum Handover<'a, T> {
    /// Another thread consumes: parts go through the channel, and only while it is the
    /// batch's turn (see [`Flow`]).
    Queued { flow: &'a Flow, seq: u64, tx: &'a Sender<(u64, Done<T>)> },
    /// This thread consumes, between batches and here: it is always this batch's turn.
    Inline(&'a mut dyn FnMut(BatchResult<T>)),
}

/// A batch's place in the flow: what it has counted against the budget, and where it hands
/// its outputs over.
struct Turn<'a, T> {
    handover: Handover<'a, T>,
    counted: usize,
    uncounted: usize,
    /// Rejection notices of the batch already weighed.
    rejections_weighed: usize,
}

impl<'a, T> Turn<'a, T> {
    fn new(handover: Handover<'a, T>) -> Turn<'a, T> {
        Turn { handover, counted: 0, uncounted: 0, rejections_weighed: 0 }
    }

    /// Weighs the rejection notices added since the last call: a line lists up to 1,000, and
    /// a batch of such lines would otherwise hold hundreds of megabytes of them.
    fn rejections_grew(&mut self, out: &mut BatchResult<T>) {
        let bytes = out.rejections[self.rejections_weighed.min(out.rejections.len())..].iter().map(RejectNotice::weight).sum();
        self.rejections_weighed = out.rejections.len();
        self.grew(out, bytes);
    }

    /// What the batch has made so far, as a part to hand over.
    fn take_part(&mut self, out: &mut BatchResult<T>) -> BatchResult<T> {
        let mut part = BatchResult::new(Arc::clone(&out.source));
        part.outputs = std::mem::take(&mut out.outputs);
        part.chunks = std::mem::take(&mut out.chunks);
        part.rejections = std::mem::take(&mut out.rejections);
        self.rejections_weighed = 0;
        part.held = std::mem::take(&mut self.counted);
        part
    }

    /// Called as a batch's outputs grow: counts them, hands them over if the batch is next in
    /// line, or waits while too much is held elsewhere.
    fn grew(&mut self, out: &mut BatchResult<T>, bytes: usize) {
        self.uncounted += bytes;
        if self.uncounted < OUTPUT_STEP_BYTES {
            return;
        }
        let new = std::mem::take(&mut self.uncounted);
        self.counted += new;
        if matches!(self.handover, Handover::Inline(_)) {
            let part = self.take_part(out);
            if let Handover::Inline(consume) = &mut self.handover {
                consume(part);
            }
            return;
        }
        let Handover::Queued { flow, seq, tx } = self.handover else { return };
        let mut st = flow.lock();
        st.held += new;
        loop {
            if st.closed {
                return;
            }
            if st.next == seq {
                st.sent += self.counted;
                let part = self.take_part(out);
                drop(st);
                let _ = tx.send((seq, Done::Part(part)));
                let mut st = flow.lock();
                while st.sent > SENT_OUTPUT_BYTES && !st.closed {
                    st = flow.wait(st);
                }
                return;
            }
            if st.held <= HELD_OUTPUT_BYTES || !st.started.contains(&st.next) {
                return;
            }
            st = flow.wait(st);
        }
    }
}

/// Runs every input through framing, parsing and `work` (in parallel), handing results to
/// `consume` in input order. `consume` returning an error (a closed pipe, a full disk) stops
/// the run early. `work` gets an `M` per batch, handed from batch to batch (one per batch
/// in flight): memos that may make it faster but must never change what it returns, so that
/// output stays the same for any thread count. With one thread, everything runs on the
/// calling thread (see [`run_inline`]).
pub fn run<T, M, W, C>(sources: Vec<InputSource>, opts: PipelineOptions, work: W, mut consume: C) -> io::Result<()>
where
    T: Weigh + Send + 'static,
    M: Default + Send + 'static,
    W: Fn(&Record, &mut M, &mut Vec<T>) + Send + Sync + 'static,
    C: FnMut(Event<'_, T>) -> io::Result<()>,
{
    let threads = opts.threads.max(1);
    if threads == 1 {
        return run_inline(sources, opts, &work, &mut consume);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("aihunt-worker-{i}"))
        .build()
        .map_err(io::Error::other)?;
    let work = Arc::new(work);
    let work_for_joins = Arc::clone(&work);
    let memos: Arc<std::sync::Mutex<Vec<M>>> = Arc::default();
    let permits = 2 * threads + 2;
    let (permit_tx, permit_rx) = sync_channel::<()>(permits);
    for _ in 0..permits {
        let _ = permit_tx.send(());
    }
    let (done_tx, done_rx) = channel::<(u64, Done<T>)>();
    let flow = Arc::new(Flow::default());

    let reader = {
        let done_tx = done_tx.clone();
        let flow = Arc::clone(&flow);
        std::thread::Builder::new().name("aihunt-reader".into()).spawn(move || {
            let mut seq = 0u64;
            let dispatch = |job: Job| -> bool {
                if permit_rx.recv().is_err() {
                    return false;
                }
                let this = seq;
                seq += 1;
                let tx: Sender<(u64, Done<T>)> = done_tx.clone();
                let work = Arc::clone(&work);
                let memos = Arc::clone(&memos);
                let flow = Arc::clone(&flow);
                pool.spawn(move || {
                    flow.start(this);
                    let done = match job {
                        Job::Batch { source, batch } => {
                            // A poisoned lock only means another batch panicked outside its
                            // records' guards; the memos themselves are still whole.
                            let mut memo = memos.lock().unwrap_or_else(|e| e.into_inner()).pop().unwrap_or_default();
                            let mut turn = Turn::new(Handover::Queued { flow: &flow, seq: this, tx: &tx });
                            let done = Done::Batch(process(source, batch, opts.parse, &mut memo, &*work, &mut turn));
                            memos.lock().unwrap_or_else(|e| e.into_inner()).push(memo);
                            done
                        }
                        Job::Done { source, bytes_read, error, end } => Done::Input { source, bytes_read, error, end },
                    };
                    let _ = tx.send((this, done));
                });
                true
            };
            read_all(sources, opts.max_line_bytes, opts.hold_incomplete_tail, dispatch);
        })?
    };
    drop(done_tx);

    let result = collect_in_order(&done_rx, &permit_tx, &flow, &*work_for_joins, opts.hold_incomplete_tail, &mut consume);
    // On an early stop, unblock and drain the reader and any waiting worker so they finish.
    flow.close();
    drop(permit_tx);
    drop(done_rx);
    let _ = reader.join();
    result
}

/// [`run`] with one thread: reads, processes and consumes each batch in turn on the calling
/// thread. `-j1` then takes one core, as a scan sharing a host asks of it, where a reader and
/// a consumer beside one worker took up to a third of another; and nothing waits on another
/// thread. What reaches `consume`, and in what order, is what the threaded run gives.
fn run_inline<T, M, W, C>(sources: Vec<InputSource>, opts: PipelineOptions, work: &W, consume: &mut C) -> io::Result<()>
where
    T: Weigh,
    M: Default,
    W: Fn(&Record, &mut M, &mut Vec<T>),
    C: FnMut(Event<'_, T>) -> io::Result<()>,
{
    let mut collector = Collector::default();
    let mut memo = M::default();
    let mut failure: Option<io::Error> = None;
    read_all(sources, opts.max_line_bytes, opts.hold_incomplete_tail, |job| {
        let consumed = match job {
            Job::Batch { source, batch } => {
                let mut hand_over = |mut part: BatchResult<T>| {
                    if failure.is_none() {
                        failure = collector.part(&mut part, work, consume).err();
                    }
                };
                let mut turn = Turn::new(Handover::Inline(&mut hand_over));
                let mut done = process(source, batch, opts.parse, &mut memo, work, &mut turn);
                if failure.is_some() {
                    return false;
                }
                collector.batch(&mut done, work, consume)
            }
            Job::Done { source, bytes_read, error, end } => consume(Event::InputDone { source: &source, bytes_read, error: error.as_ref(), end }),
        };
        consumed.map_err(|e| failure = Some(e)).is_ok()
    });
    match failure {
        Some(e) => Err(e),
        None => collector.finish(opts.hold_incomplete_tail, consume),
    }
}

/// Takes batches' outputs in input order to the consumer: joins chunked LLM-log messages
/// (in input order, so the result is deterministic) and reports what never joined.
struct Collector {
    joiner: ChunkJoiner,
    /// Rejections of chunk groups given up while joining the parts of the batch next in line:
    /// reported after all of that batch's own, where they would be had it come whole (its own
    /// come with its parts, in input order).
    carried: Vec<RejectNotice>,
}

impl Default for Collector {
    fn default() -> Self {
        Collector { joiner: ChunkJoiner::new(JoinLimits::default()), carried: Vec::new() }
    }
}

impl Collector {
    /// Outputs and rejections a batch handed over before its end.
    fn part<T, M, W, C>(&mut self, part: &mut BatchResult<T>, work: &W, consume: &mut C) -> io::Result<()>
    where
        M: Default,
        W: Fn(&Record, &mut M, &mut Vec<T>),
        C: FnMut(Event<'_, T>) -> io::Result<()>,
    {
        let read = std::mem::take(&mut part.rejections);
        join_chunks(&mut self.joiner, part, work);
        self.carried.append(&mut part.rejections);
        part.rejections = read;
        consume(Event::Batch(part))
    }

    /// The rest of a batch, with its counts.
    fn batch<T, M, W, C>(&mut self, b: &mut BatchResult<T>, work: &W, consume: &mut C) -> io::Result<()>
    where
        M: Default,
        W: Fn(&Record, &mut M, &mut Vec<T>),
        C: FnMut(Event<'_, T>) -> io::Result<()>,
    {
        b.rejections.append(&mut self.carried);
        join_chunks(&mut self.joiner, b, work);
        consume(Event::Batch(b))
    }

    /// After the last input: chunk groups still open are left for the next run of an
    /// incremental scan (`hold_pending`), or reported as never joined.
    fn finish<T, C>(mut self, hold_pending: bool, consume: &mut C) -> io::Result<()>
    where
        C: FnMut(Event<'_, T>) -> io::Result<()>,
    {
        let open_groups = self.joiner.drain();
        if hold_pending && !open_groups.is_empty() {
            let rows: Vec<RowRef> = open_groups.into_iter().flat_map(|g| g.rows).collect();
            return consume(Event::PendingChunks(&rows));
        }
        let unjoined: Vec<RejectNotice> = open_groups.into_iter().map(unjoined_notice).collect();
        if !unjoined.is_empty() {
            consume(Event::Unjoined(&unjoined))?;
        }
        Ok(())
    }
}

fn collect_in_order<T, M, W, C>(
    done_rx: &Receiver<(u64, Done<T>)>,
    permit_tx: &SyncSender<()>,
    flow: &Flow,
    work: &W,
    hold_pending: bool,
    consume: &mut C,
) -> io::Result<()>
where
    M: Default,
    W: Fn(&Record, &mut M, &mut Vec<T>),
    C: FnMut(Event<'_, T>) -> io::Result<()>,
{
    let mut next = 0u64;
    let mut waiting: BTreeMap<u64, Done<T>> = BTreeMap::new();
    let mut collector = Collector::default();
    for (seq, done) in done_rx.iter() {
        if let Done::Part(mut part) = done {
            // Parts come only from the batch next in line (see `Turn::grew`).
            debug_assert_eq!(seq, next);
            let consumed = collector.part(&mut part, work, consume);
            // Released only once freed: a worker let go before would briefly hold it twice.
            let held = part.held;
            drop(part);
            flow.consumed(held, held, None);
            consumed?;
            continue;
        }
        waiting.insert(seq, done);
        while let Some(mut done) = waiting.remove(&next) {
            next += 1;
            let _ = permit_tx.send(());
            let mut held = 0;
            let consumed = match &mut done {
                Done::Batch(b) => {
                    held = b.held;
                    collector.batch(b, work, consume)
                }
                Done::Input { source, bytes_read, error, end } => {
                    consume(Event::InputDone { source, bytes_read: *bytes_read, error: error.as_ref(), end: *end })
                }
                Done::Part(_) => Ok(()),
            };
            drop(done);
            flow.consumed(held, 0, Some(next - 1));
            consumed?;
        }
    }
    collector.finish(hold_pending, consume)
}

/// Feeds a batch's chunks to the joiner (in input order, so the result is deterministic);
/// joined records are processed here and their outputs added to the batch.
fn join_chunks<T, M, W>(joiner: &mut ChunkJoiner, b: &mut BatchResult<T>, work: &W)
where
    M: Default,
    W: Fn(&Record, &mut M, &mut Vec<T>),
{
    let mut memo = M::default();
    let mut joined_outputs: Vec<(usize, Vec<T>)> = Vec::new();
    for (position, chunk) in std::mem::take(&mut b.chunks) {
        match joiner.add(chunk) {
            Joined::Pending => {}
            Joined::Complete(record) => {
                *b.records_by_kind.entry(record.kind).or_default() += 1;
                let mut outputs = Vec::new();
                if catch_unwind(AssertUnwindSafe(|| work(&record, &mut memo, &mut outputs))).is_ok() {
                    joined_outputs.push((position, outputs));
                } else {
                    b.rejections.push(RejectNotice {
                        file: record.source_file.clone(),
                        line: record.source_line,
                        index: None,
                        reason: RejectReason::InternalError,
                        detail: "detection failed on this record (a bug; please report it)".into(),
                        count: 1,
                    });
                }
            }
            Joined::GivenUp(groups) => b.rejections.extend(groups.into_iter().map(unjoined_notice)),
        }
    }
    if joined_outputs.is_empty() {
        return;
    }
    let mut merged = Vec::with_capacity(b.outputs.len() + joined_outputs.len());
    let mut rest = std::mem::take(&mut b.outputs).into_iter().enumerate().peekable();
    for (position, outputs) in joined_outputs {
        while let Some((_, o)) = rest.next_if(|(i, _)| *i < position) {
            merged.push(o);
        }
        merged.extend(outputs);
    }
    merged.extend(rest.map(|(_, o)| o));
    b.outputs = merged;
}

fn unjoined_notice(g: UnjoinedGroup) -> RejectNotice {
    RejectNotice { file: g.row.source_file, line: g.row.source_line, index: None, reason: g.reason, detail: g.detail, count: 1 }
}

/// Reads every input in order and hands batches (and an end marker per input) to `dispatch`;
/// stops when `dispatch` says the consumer has gone.
fn read_all(sources: Vec<InputSource>, max_line: usize, hold_tail: bool, mut dispatch: impl FnMut(Job) -> bool) {
    for source in sources {
        let source = Arc::new(source);
        let (offset, line) = source.resume.unwrap_or((0, 0));
        let start = InputEnd { offset, line, ..InputEnd::default() };
        let opened = input::open(&source).and_then(|r| LineReader::new(r, max_line).hold_tail(hold_tail).resume(offset, line));
        let mut lines = match opened {
            Ok(l) => l,
            Err(error) => {
                if !dispatch(Job::Done { source, bytes_read: 0, error: Some(error), end: start }) {
                    return;
                }
                continue;
            }
        };
        let mut framer = Framer::new(max_line);
        let mut batch = FrameBatch::default();
        let mut last_line = line;
        let mut batch_limit = FIRST_BATCH_BYTES;
        loop {
            let start = lines.consumed();
            let Some(line) = lines.next_line() else { break };
            last_line = match &line {
                Line::Text { no, .. } | Line::TooLong { no, .. } => *no,
            };
            batch.line_offsets.push((last_line, start));
            framer.push_line(line, &mut batch);
            if batch.arena.len() >= batch_limit || batch.frames.len() >= BATCH_FRAMES {
                batch_limit = (batch_limit * 2).min(BATCH_BYTES);
                // The next batch of this input will likely be as big: growing its text by
                // doubling copied every batch's megabyte about once more.
                let size = batch.arena.len();
                let full = std::mem::replace(&mut batch, FrameBatch { arena: String::with_capacity(size + size / 8), ..FrameBatch::default() });
                if !dispatch(Job::Batch { source: Arc::clone(&source), batch: full }) {
                    return;
                }
            }
        }
        let document_open = hold_tail && framer.in_document();
        if !document_open {
            framer.finish(last_line, &mut batch);
        }
        if !batch.is_empty() && !dispatch(Job::Batch { source: Arc::clone(&source), batch }) {
            return;
        }
        let error = lines.take_error();
        let end = InputEnd { offset: lines.consumed(), line: lines.line_no(), held_tail: lines.held_tail(), document_open };
        let bytes_read = lines.bytes_read().saturating_sub(offset);
        if !dispatch(Job::Done { source, bytes_read, error, end }) {
            return;
        }
    }
}

fn process<T, M, W>(source: Arc<InputSource>, batch: FrameBatch, parse: ParseOptions, memo: &mut M, work: &W, turn: &mut Turn<T>) -> BatchResult<T>
where
    T: Weigh,
    W: Fn(&Record, &mut M, &mut Vec<T>),
{
    let mut out = BatchResult::new(Arc::clone(&source));
    out.text_bytes = batch.arena.len() as u64;
    out.counts = batch.counts;
    out.lines_parsed = batch.counts.structural;
    for frame in &batch.frames {
        turn.rejections_grew(&mut out);
        let owned = u64::from(frame.owned_lines);
        let reject = |out: &mut BatchResult<T>, reason: RejectReason, index: Option<u32>, detail: String, count: u64| {
            out.rejections.push(RejectNotice { file: Arc::clone(&source.display), line: frame.line, index, reason, detail, count });
        };
        let range = match &frame.body {
            FrameBody::Json(r) => r,
            FrameBody::Rejected { reason, detail } => {
                reject(&mut out, *reason, None, detail.clone(), 1);
                *out.lines_rejected.entry(*reason).or_default() += owned;
                continue;
            }
        };
        let text = batch.text(range);
        let offset = batch.offset_of(frame.line).unwrap_or(0);
        // Each record is matched as soon as it is read and then dropped, so a line of millions
        // of records never holds them all.
        let mut failed: Vec<RejectNotice> = Vec::new();
        let mut each = |made: Made| {
            let record = match made {
                // Joined on the consuming thread, in input order; its outputs go here.
                Made::Chunk(chunk) => {
                    let weight = chunk.weight();
                    out.chunks.push((out.outputs.len(), chunk));
                    return turn.grew(&mut out, weight);
                }
                Made::Record(record) => record,
            };
            *out.records_by_kind.entry(record.kind).or_default() += 1;
            let before = out.outputs.len();
            // A bug reachable from hostile input must cost one record, not the scan.
            if catch_unwind(AssertUnwindSafe(|| work(&record, memo, &mut out.outputs))).is_err() {
                out.outputs.truncate(before);
                let detail = "detection failed on this record (a bug; please report it)".into();
                failed.push(RejectNotice { file: Arc::clone(&source.display), line: frame.line, index: record.index_in_line, reason: RejectReason::InternalError, detail, count: 1 });
            }
            let grown = out.outputs[before..].iter().map(Weigh::weight).sum();
            turn.grew(&mut out, grown);
        };
        let parsed = catch_unwind(AssertUnwindSafe(|| {
            let parsed = parse_frame_into(text, &source.display, frame.line, offset, parse, &mut each);
            (parsed.made, parsed.rejections)
        }));
        let (made, rejections) = match parsed {
            Ok(p) => p,
            Err(_) => {
                out.rejections.append(&mut failed);
                reject(&mut out, RejectReason::InternalError, None, "aihunt failed on this record (a bug; please report it)".into(), 1);
                *out.lines_rejected.entry(RejectReason::InternalError).or_default() += owned;
                continue;
            }
        };
        let mut first_reason = None;
        for r in rejections {
            let reason = if r.reason == RejectReason::InvalidJson && frame.unterminated {
                RejectReason::TruncatedLine
            } else {
                r.reason
            };
            first_reason.get_or_insert(reason);
            reject(&mut out, reason, r.index, r.detail, r.count);
        }
        out.rejections.append(&mut failed);
        match first_reason {
            Some(reason) if made == 0 => *out.lines_rejected.entry(reason).or_default() += owned,
            _ => out.lines_parsed += owned,
        }
    }
    turn.rejections_grew(&mut out);
    out.held = turn.counted;
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::Location;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// An output that claims to weigh a lot without holding it, and counts how much of its
    /// kind is alive, so a test sees what the pipeline holds.
    struct Claim {
        at: At,
        live: Live,
    }

    const CLAIMED: usize = 256 << 10;

    /// Where an output's record was: line, and index in its wrapper.
    type At = (u64, Option<u32>);
    /// A rejection notice: line, index, and how many records it stands for.
    type Rejected = (u64, Option<u32>, u64);
    /// Bytes of outputs alive now, and the most at once.
    type Live = Arc<(AtomicUsize, AtomicUsize)>;

    impl Weigh for Claim {
        fn weight(&self) -> usize {
            CLAIMED
        }
    }

    impl Drop for Claim {
        fn drop(&mut self) {
            self.live.0.fetch_sub(CLAIMED, Ordering::SeqCst);
        }
    }

    /// Lines of `records` wrappers of key listings, each record one output of 256 KB and each
    /// followed by an element that is not a record, read by a consumer slower than the workers.
    /// Returns the outputs and the rejections in the order consumed, and the most bytes of
    /// outputs alive at once.
    fn run_slow_consumer(threads: usize, lines: usize, per_line: usize) -> (Vec<At>, Vec<Rejected>, usize) {
        let (result, order, rejected, live) = run_slow_consumer_stopping(threads, lines, per_line, usize::MAX);
        result.unwrap();
        (order, rejected, live.1.load(Ordering::SeqCst))
    }

    /// [`run_slow_consumer`] whose consumer fails (a closed pipe) at its `stop_at`-th event;
    /// with the outputs alive now and at most.
    fn run_slow_consumer_stopping(threads: usize, lines: usize, per_line: usize, stop_at: usize) -> (io::Result<()>, Vec<At>, Vec<Rejected>, Live) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wrapped.jsonl");
        let record = r#"{"time":"2026-11-24T14:00:00Z","operationName":"MICROSOFT.COGNITIVESERVICES/ACCOUNTS/LISTKEYS/ACTION","category":"Administrative","resultType":"Success","callerIpAddress":"10.0.0.1","resourceId":"/SUBSCRIPTIONS/S/RESOURCEGROUPS/G/PROVIDERS/MICROSOFT.COGNITIVESERVICES/ACCOUNTS/A"}"#;
        let line = format!("{{\"records\":[{}]}}\n", vec![record; per_line].join(",1,"));
        std::fs::write(&path, line.repeat(lines)).unwrap();
        let sources = vec![InputSource { display: "wrapped.jsonl".into(), location: Location::File(path), resume: None }];
        let opts = PipelineOptions { threads, max_line_bytes: 64 << 20, parse: ParseOptions::default(), hold_incomplete_tail: false };
        let live: Live = Arc::default();
        let work = {
            let live = Arc::clone(&live);
            move |record: &Record, _: &mut (), out: &mut Vec<Claim>| {
                let now = live.0.fetch_add(CLAIMED, Ordering::SeqCst) + CLAIMED;
                live.1.fetch_max(now, Ordering::SeqCst);
                out.push(Claim { at: (record.source_line, record.index_in_line), live: Arc::clone(&live) });
            }
        };
        let mut order = Vec::new();
        let mut rejected = Vec::new();
        let mut events = 0;
        let result = run(sources, opts, work, |event| {
            events += 1;
            if events >= stop_at {
                return Err(io::Error::from(io::ErrorKind::BrokenPipe));
            }
            if let Event::Batch(b) = event {
                rejected.extend(b.rejections.iter().map(|r| (r.line, r.index, r.count)));
                for o in &b.outputs {
                    order.push(o.at);
                    std::thread::sleep(std::time::Duration::from_micros(20));
                }
            }
            Ok(())
        });
        (result, order, rejected, live)
    }

    #[test]
    fn regression_outputs_waiting_for_their_turn_stay_within_the_budget() {
        // Every batch kept its outputs until its end, and up to 2 x threads + 2 batches could
        // be done and waiting for a slow consumer: here 6 lines of 500 MB of outputs each.
        let (order, _, most) = run_slow_consumer(2, 6, 2000);
        assert_eq!(order.len(), 12_000);
        // Past the budget by at most: the step a batch counts before it stops, the parts the
        // batch next in line hands over before it waits for the consumer, and what each
        // worker has not counted yet.
        let step = OUTPUT_STEP_BYTES + CLAIMED;
        let slack = step + (SENT_OUTPUT_BYTES + step) + 2 * step;
        assert!(most <= HELD_OUTPUT_BYTES + slack, "{} MB of outputs alive at once", most >> 20);
    }

    #[test]
    fn a_consumer_that_stops_releases_batches_waiting_for_their_turn() {
        // Workers wait for the consumer (the budget is spent many times over); when it fails,
        // the run ends with its error, and the workers must not wait on for a turn that never
        // comes, holding their batches.
        let (result, _, _, live) = run_slow_consumer_stopping(2, 6, 2000, 3);
        assert_eq!(result.map_err(|e| e.kind()), Err(io::ErrorKind::BrokenPipe));
        let started = std::time::Instant::now();
        while live.0.load(Ordering::SeqCst) > 0 {
            assert!(started.elapsed().as_secs() < 30, "{} MB of outputs still held by waiting workers", live.0.load(Ordering::SeqCst) >> 20);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    #[test]
    fn with_one_thread_everything_runs_on_the_calling_thread_and_outputs_go_as_they_grow() {
        // `-j1` must take one core: no reader, pool or consumer thread beside the caller.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("one.jsonl");
        let record = r#"{"time":"2026-11-24T14:00:00Z","operationName":"MICROSOFT.COGNITIVESERVICES/ACCOUNTS/LISTKEYS/ACTION","category":"Administrative","resultType":"Success"}"#;
        std::fs::write(&path, format!("{record}\n").repeat(3000)).unwrap();
        let sources = vec![InputSource { display: "one.jsonl".into(), location: Location::File(path), resume: None }];
        let opts = PipelineOptions { threads: 1, max_line_bytes: 1 << 20, parse: ParseOptions::default(), hold_incomplete_tail: false };
        let caller = std::thread::current().id();
        let elsewhere = Arc::new(AtomicUsize::new(0));
        let work = {
            let elsewhere = Arc::clone(&elsewhere);
            move |_: &Record, _: &mut (), out: &mut Vec<Vec<u8>>| {
                if std::thread::current().id() != caller {
                    elsewhere.fetch_add(1, Ordering::SeqCst);
                }
                out.push(vec![0; 1000]);
            }
        };
        let mut consumed = 0;
        run(sources, opts, work, |event| {
            assert_eq!(std::thread::current().id(), caller);
            if let Event::Batch(b) = event {
                consumed += b.outputs.len();
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(consumed, 3000);
        assert_eq!(elsewhere.load(Ordering::SeqCst), 0, "records processed on another thread");
        // Handed over a step at a time, not held to the batch's end.
        let (_, _, most) = run_slow_consumer(1, 2, 2000);
        assert!(most <= OUTPUT_STEP_BYTES + CLAIMED, "{} MB of outputs alive at once", most >> 20);
    }

    #[test]
    fn with_one_thread_a_consumer_that_stops_ends_the_run_with_its_error() {
        let (result, order, _, live) = run_slow_consumer_stopping(1, 6, 2000, 3);
        assert_eq!(result.map_err(|e| e.kind()), Err(io::ErrorKind::BrokenPipe));
        assert_eq!(live.0.load(Ordering::SeqCst), 0);
        assert!(order.len() < 2000, "{} outputs consumed after the consumer failed", order.len());
    }

    #[test]
    fn outputs_handed_over_in_parts_keep_input_order_for_any_thread_count() {
        let expected: Vec<At> = (1..=5).flat_map(|line| (0..1500).map(move |i| (line, Some(2 * i)))).collect();
        let mut first_rejected = None;
        for threads in [1, 2, 4] {
            let (order, rejected, _) = run_slow_consumer(threads, 5, 1500);
            assert!(order == expected, "-j{threads}: outputs out of input order");
            // 1,499 elements a line that are not records: 1,000 listed, then one count.
            assert_eq!(rejected.iter().map(|r| r.2).sum::<u64>(), 5 * 1499);
            assert_eq!(rejected.len(), 5 * 1001);
            let first = first_rejected.get_or_insert_with(|| rejected.clone());
            assert!(*first == rejected, "-j{threads}: rejections in another order than at -j1");
        }
    }
}
