//! Time series of one entity as commutative summaries (counts and sums per time bucket, the
//! earliest few records of each), so the result is the same whatever order the records
//! arrive in; and the two evaluations over them: count bursts in a sliding window and volume
//! against the entity's own robust baseline.

use std::sync::Arc;

/// Where a record is: orders records that share a timestamp.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RecordRef {
    pub file: Arc<str>,
    pub line: u64,
    pub index: Option<u32>,
}

/// One record in time. Ordered by time, then by place, so "the earliest" is well defined.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Point {
    pub time: jiff::Timestamp,
    pub at: RecordRef,
}

impl Point {
    pub fn secs(&self) -> i64 {
        self.time.as_second()
    }
}

/// Inserts `p` into the sorted `list` keeping only its `keep` smallest elements: the kept set
/// is the same whatever order points are inserted in.
pub fn keep_earliest(list: &mut Vec<Point>, p: &Point, keep: usize) -> bool {
    // Records mostly come in time order: a full list's last point settles most of them.
    if list.len() >= keep && list.last().is_some_and(|last| p >= last) {
        return false;
    }
    let pos = match list.binary_search(p) {
        Ok(_) => return false,
        Err(pos) => pos,
    };
    if pos >= keep {
        return false;
    }
    grow_gently(list);
    list.insert(pos, p.clone());
    if list.len() > keep {
        list.pop();
        return false;
    }
    true
}

/// Makes room for one more element growing by half, not doubling from four: most entities
/// hold one or two buckets and records, and millions of them would waste most of their space.
pub fn grow_gently<T>(v: &mut Vec<T>) {
    if v.len() == v.capacity() {
        v.reserve_exact((v.len() / 2).max(1));
    }
}

#[derive(Debug, Default, Clone)]
pub struct Bucket {
    pub count: u64,
    /// The summed measure (tokens) when the detector reads one.
    pub amount: u64,
    pub earliest: Vec<Point>,
    /// The time of the bucket's latest record.
    pub latest: Option<jiff::Timestamp>,
}

/// Buckets of fixed width, sorted by index (a sorted vector: most entities touch few buckets).
#[derive(Debug, Default, Clone)]
pub struct Series {
    pub buckets: Vec<(i64, Bucket)>,
}

impl Series {
    /// Adds a point; returns how many retained entries (buckets and points) were added.
    pub fn add(&mut self, p: &Point, width: i64, amount: u64, keep: usize) -> u64 {
        let idx = p.secs().div_euclid(width);
        let (i, mut added) = match self.buckets.binary_search_by_key(&idx, |(b, _)| *b) {
            Ok(i) => (i, 0),
            Err(i) => {
                grow_gently(&mut self.buckets);
                self.buckets.insert(i, (idx, Bucket::default()));
                (i, 1)
            }
        };
        let b = &mut self.buckets[i].1;
        b.count += 1;
        b.amount = b.amount.saturating_add(amount);
        b.latest = b.latest.max(Some(p.time));
        if keep_earliest(&mut b.earliest, p, keep) {
            added += 1;
        }
        added
    }

    /// The earliest `cap` points of the buckets with index in `from..=to`.
    pub fn earliest_in(&self, from: i64, to: i64, cap: usize) -> Vec<Point> {
        let mut out: Vec<Point> = Vec::new();
        for (_, b) in self.buckets.iter().filter(|(i, _)| (from..=to).contains(i)) {
            for p in &b.earliest {
                keep_earliest(&mut out, p, cap);
            }
        }
        out
    }

    /// The time of the latest record in the buckets with index in `from..=to`.
    pub fn latest_in(&self, from: i64, to: i64) -> Option<jiff::Timestamp> {
        self.buckets.iter().filter(|(i, _)| (from..=to).contains(i)).filter_map(|(_, b)| b.latest).max()
    }

    pub fn count_in(&self, from: i64, to: i64) -> u64 {
        self.buckets.iter().filter(|(i, _)| (from..=to).contains(i)).map(|(_, b)| b.count).sum()
    }
}

/// Sub-buckets per window: a burst is looked for in every window-long run of `STEPS`
/// consecutive sub-buckets, so the window slides in steps of a quarter of its length.
pub const STEPS: i64 = 4;

/// A stretch of consecutive windows at or over the threshold.
#[derive(Debug, Clone)]
pub struct Burst {
    /// Sub-bucket indexes of the stretch, first and last.
    pub from: i64,
    pub to: i64,
    /// Events in the first window that reached the threshold, and in the whole stretch.
    pub first_window_count: u64,
    pub total: u64,
    /// The record that brought the first window to the threshold.
    pub trigger: Point,
}

/// Finds every stretch where `threshold` events fall within one window of `STEPS` sub-buckets.
/// Buckets must keep at least `threshold` earliest points for the trigger to be exact.
pub fn bursts(series: &Series, threshold: u64) -> Vec<Burst> {
    let mut out: Vec<Burst> = Vec::new();
    let b = &series.buckets;
    let mut lo = 0usize;
    let mut in_window = 0u64;
    for hi in 0..b.len() {
        let end = b[hi].0;
        in_window += b[hi].1.count;
        while b[lo].0 <= end - STEPS {
            in_window -= b[lo].1.count;
            lo += 1;
        }
        if in_window < threshold {
            continue;
        }
        let start = end - (STEPS - 1);
        match out.last_mut() {
            // Overlapping or touching windows are one burst.
            Some(last) if start <= last.to + 1 => last.to = end,
            _ => {
                let first = series.earliest_in(start, end, threshold as usize);
                let trigger = first.get(threshold as usize - 1).or(first.last()).cloned();
                if let Some(trigger) = trigger {
                    out.push(Burst { from: start, to: end, first_window_count: in_window, total: 0, trigger });
                }
            }
        }
    }
    for burst in &mut out {
        burst.total = series.count_in(burst.from, burst.to);
    }
    out
}

/// What a volume window was judged against.
#[derive(Debug, Clone, PartialEq)]
pub struct Anomaly {
    /// Bucket (window) indexes of a run of anomalous windows.
    pub from: i64,
    pub to: i64,
    /// The highest value in the run, and the window it was in.
    pub observed: u64,
    pub median: f64,
    pub mad: f64,
    /// The value the first anomalous window had to exceed.
    pub limit: f64,
    /// Active windows the baseline was taken from.
    pub history: u32,
}

/// The volume rule's parameters, as numbers.
pub struct VolumeTest {
    pub baseline_windows: u32,
    pub min_baseline_windows: u32,
    pub factor: f64,
    pub min_score: f64,
    pub min_value: u64,
    pub tokens: bool,
}

/// Windows whose value is far above the median of the entity's earlier active windows (those
/// with any traffic: a diurnal caller's baseline is its typical working hour, not its quiet
/// nights). "Far" means above both `factor` times the median and the median plus `min_score`
/// scaled MADs (a robust z-score), and at least `min_value`. The entity needs
/// `min_baseline_windows` active windows among the previous `baseline_windows` first.
pub fn anomalies(series: &Series, t: &VolumeTest) -> Vec<Anomaly> {
    let value = |b: &Bucket| if t.tokens { b.amount } else { b.count };
    let mut out: Vec<Anomaly> = Vec::new();
    let mut history: Vec<f64> = Vec::with_capacity(t.baseline_windows as usize);
    for (pos, (idx, bucket)) in series.buckets.iter().enumerate() {
        let observed = value(bucket);
        if observed < t.min_value {
            continue;
        }
        let from = idx - i64::from(t.baseline_windows);
        history.clear();
        history.extend(series.buckets[..pos].iter().rev().take_while(|(i, _)| *i >= from).map(|(_, b)| value(b) as f64));
        let windows = history.len() as u32;
        if windows < t.min_baseline_windows {
            continue;
        }
        let (median, mad) = median_mad(&mut history);
        let limit = (median * t.factor).max(median + t.min_score * 1.4826 * mad);
        if (observed as f64) <= limit {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.to + 1 == *idx => {
                last.to = *idx;
                last.observed = last.observed.max(observed);
            }
            _ => out.push(Anomaly { from: *idx, to: *idx, observed, median, mad, limit, history: windows }),
        }
    }
    out
}

/// Median and median absolute deviation (unscaled) of `v`, which is reordered.
pub fn median_mad(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let median = median_of(v);
    for x in v.iter_mut() {
        *x = (*x - median).abs();
    }
    (median, median_of(v))
}

fn median_of(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, line: u64) -> Point {
        Point {
            time: jiff::Timestamp::from_second(secs).unwrap(),
            at: RecordRef { file: Arc::from("f"), line, index: None },
        }
    }

    #[test]
    fn the_earliest_points_kept_do_not_depend_on_insert_order() {
        let points: Vec<Point> = (0..20).map(|i| at(1000 + (i * 7919) % 97, i as u64)).collect();
        let mut a = Vec::new();
        let mut b = Vec::new();
        for p in &points {
            keep_earliest(&mut a, p, 5);
        }
        for p in points.iter().rev() {
            keep_earliest(&mut b, p, 5);
        }
        assert_eq!(a, b);
        assert_eq!(a.len(), 5);
        // In time order (the usual case) all but the first few are turned away by the last.
        let mut sorted = points.clone();
        sorted.sort();
        let mut c = Vec::new();
        let kept: Vec<bool> = sorted.iter().map(|p| keep_earliest(&mut c, p, 5)).collect();
        assert_eq!(c, a);
        assert_eq!(kept.iter().filter(|k| **k).count(), 5);
        assert!(!keep_earliest(&mut c, &sorted[0], 5), "a point already kept is not kept twice");
    }

    #[test]
    fn a_burst_names_the_record_that_reached_the_threshold() {
        // 60 s window (15 s steps); 5 events in 40 s, then quiet, then 2 more.
        let mut s = Series::default();
        for (i, t) in [100, 110, 120, 130, 140, 500, 505].iter().enumerate() {
            s.add(&at(*t, i as u64), 15, 0, 5);
        }
        let found = bursts(&s, 5);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].trigger.at.line, 4, "the fifth event");
        assert_eq!(found[0].total, 5);
        assert!(bursts(&s, 6).is_empty());
    }

    #[test]
    fn volume_far_above_the_entitys_own_median_is_an_anomaly() {
        let mut s = Series::default();
        let mut line = 0;
        for hour in 0..60i64 {
            // Busy days, empty nights: the baseline is the busy hour, not the night.
            let n = match hour {
                52 => 400,
                h if h % 24 < 8 || h % 24 >= 18 => 0,
                h => 8 + (h % 5) as u64,
            };
            for k in 0..n {
                line += 1;
                s.add(&at(hour * 3600 + k as i64, line), 3600, 0, 3);
            }
        }
        let t = VolumeTest { baseline_windows: 24, min_baseline_windows: 6, factor: 5.0, min_score: 6.0, min_value: 100, tokens: false };
        let found = anomalies(&s, &t);
        assert_eq!(found.len(), 1);
        assert_eq!((found[0].from, found[0].observed), (52, 400));
        assert!(found[0].median >= 8.0 && found[0].median <= 12.0, "{found:?}");
        // The same 400 with a baseline of fifty an hour is not five times above it.
        let mut busy = Series::default();
        for hour in 0..30i64 {
            for k in 0..if hour == 28 { 220 } else { 50 } {
                busy.add(&at(hour * 3600 + k, 0), 3600, 0, 1);
            }
        }
        assert!(anomalies(&busy, &t).is_empty());
    }

    #[test]
    fn median_and_mad() {
        assert_eq!(median_mad(&mut [1.0, 2.0, 3.0, 4.0, 100.0]), (3.0, 1.0));
        assert_eq!(median_mad(&mut []), (0.0, 0.0));
    }
}
