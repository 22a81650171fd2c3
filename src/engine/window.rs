//! A sliding window of request and token counts, kept as sparse time buckets.
//!
//! Why buckets rather than one timestamp per request: a day window at 10 000
//! requests would otherwise hold 10 000 entries per workspace. With buckets the
//! cost is bounded by the bucket count (60 for the minute window, 1 440 for the
//! day) and an idle workspace holds nothing at all. The price is granularity: usage
//! leaves the window at its bucket's end, at most one bucket width early.

use std::collections::VecDeque;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Bucket {
    index: u64,
    requests: u64,
    tokens: u64,
}

/// Which count of a window a question is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    Requests,
    Tokens,
}

impl Bucket {
    fn get(&self, metric: Metric) -> u64 {
        match metric {
            Metric::Requests => self.requests,
            Metric::Tokens => self.tokens,
        }
    }
}

#[derive(Clone, Debug)]
pub struct SlidingWindow {
    bucket_ms: u64,
    bucket_count: u64,
    buckets: VecDeque<Bucket>,
    requests: u64,
    tokens: u64,
}

impl SlidingWindow {
    pub fn new(bucket_ms: u64, bucket_count: u64) -> Self {
        Self {
            bucket_ms,
            bucket_count,
            buckets: VecDeque::new(),
            requests: 0,
            tokens: 0,
        }
    }

    /// One minute in one-second buckets.
    pub fn minute() -> Self {
        Self::new(1_000, 60)
    }

    /// One day in one-minute buckets.
    pub fn day() -> Self {
        Self::new(60_000, 1_440)
    }

    pub fn length_ms(&self) -> u64 {
        self.bucket_ms * self.bucket_count
    }

    /// Drops buckets that have slid out of the window at `now_ms`.
    pub fn evict(&mut self, now_ms: u64) {
        let now_index = now_ms / self.bucket_ms;
        while let Some(oldest) = self.buckets.front() {
            if oldest.index + self.bucket_count > now_index {
                break;
            }
            self.requests = self.requests.saturating_sub(oldest.requests);
            self.tokens = self.tokens.saturating_sub(oldest.tokens);
            self.buckets.pop_front();
        }
    }

    pub fn add(&mut self, now_ms: u64, requests: u64, tokens: u64) {
        self.evict(now_ms);
        let index = now_ms / self.bucket_ms;
        match self.buckets.back_mut() {
            // Clocks may step back a little (NTP); count such usage in the newest
            // bucket rather than reorder the deque.
            Some(newest) if newest.index >= index => {
                // Saturating like the totals: the upstream's numbers reach here.
                newest.requests = newest.requests.saturating_add(requests);
                newest.tokens = newest.tokens.saturating_add(tokens);
            }
            _ => self.buckets.push_back(Bucket {
                index,
                requests,
                tokens,
            }),
        }
        self.requests = self.requests.saturating_add(requests);
        self.tokens = self.tokens.saturating_add(tokens);
    }

    /// Total of `metric` in the window. Call [`evict`](Self::evict) first.
    pub fn total(&self, metric: Metric) -> u64 {
        match metric {
            Metric::Requests => self.requests,
            Metric::Tokens => self.tokens,
        }
    }

    /// Milliseconds until the oldest usage of `metric` leaves the window (0 if none).
    pub fn resets_in_ms(&self, now_ms: u64, metric: Metric) -> u64 {
        self.buckets
            .iter()
            .find(|b| b.get(metric) > 0)
            .map(|b| self.expiry_ms(b).saturating_sub(now_ms))
            .unwrap_or(0)
    }

    /// Milliseconds until the window has room for `cost` more of `metric` under
    /// `limit`; 0 when it has room now. `None` if it never will (cost > limit).
    pub fn wait_for_room_ms(
        &self,
        now_ms: u64,
        metric: Metric,
        limit: u64,
        cost: u64,
    ) -> Option<u64> {
        let total = self.total(metric);
        if total.saturating_add(cost) <= limit {
            return Some(0);
        }
        if cost > limit {
            return None;
        }
        let mut remaining = total;
        for bucket in &self.buckets {
            remaining = remaining.saturating_sub(bucket.get(metric));
            if remaining.saturating_add(cost) <= limit {
                return Some(self.expiry_ms(bucket).saturating_sub(now_ms));
            }
        }
        // Unreachable with consistent totals; fall back to a whole window.
        Some(self.length_ms())
    }

    /// Per-bucket counts for the last `count` buckets, oldest first, zero-filled.
    /// Each item is (bucket start in unix ms, requests, tokens).
    pub fn history(&self, now_ms: u64, count: u64) -> Vec<(u64, u64, u64)> {
        let now_index = now_ms / self.bucket_ms;
        let first = now_index.saturating_sub(count.saturating_sub(1));
        let mut out = Vec::with_capacity(count as usize);
        let mut buckets = self.buckets.iter().peekable();
        for index in first..=now_index {
            while buckets.peek().is_some_and(|b| b.index < index) {
                buckets.next();
            }
            let (requests, tokens) = match buckets.peek() {
                Some(b) if b.index == index => (b.requests, b.tokens),
                _ => (0, 0),
            };
            out.push((index * self.bucket_ms, requests, tokens));
        }
        out
    }

    /// Requests in the buckets covering `[from_ms, to_ms)`, and how many of
    /// those buckets had any. No allocation: this runs on the record path.
    pub fn requests_between(&self, from_ms: u64, to_ms: u64) -> (u64, usize) {
        let (from, to) = (from_ms / self.bucket_ms, to_ms / self.bucket_ms);
        // From the newest end: the range is recent, so this touches only the
        // buckets in it, not the whole day.
        self.buckets
            .iter()
            .rev()
            .skip_while(|b| b.index >= to)
            .take_while(|b| b.index >= from)
            .filter(|b| b.requests > 0)
            .fold((0, 0), |(sum, active), b| (sum + b.requests, active + 1))
    }

    pub fn clear(&mut self) {
        self.buckets = VecDeque::new();
        self.requests = 0;
        self.tokens = 0;
    }

    /// Heap bytes held by this window (for the memory benchmark).
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }

    fn expiry_ms(&self, bucket: &Bucket) -> u64 {
        (bucket.index + self.bucket_count) * self.bucket_ms
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_leaves_the_window_after_its_length() {
        let mut w = SlidingWindow::minute();
        w.add(10_500, 1, 100);
        w.evict(69_999);
        assert_eq!(w.total(Metric::Requests), 1);
        w.evict(70_000);
        assert_eq!(w.total(Metric::Requests), 0);
        assert_eq!(w.total(Metric::Tokens), 0);
    }

    #[test]
    fn wait_for_room_walks_buckets_from_the_oldest() {
        let mut w = SlidingWindow::minute();
        w.add(0, 2, 0);
        w.add(5_000, 3, 0);
        // Limit 5 is full; one more fits when the first bucket (2) expires at 60s.
        assert_eq!(
            w.wait_for_room_ms(10_000, Metric::Requests, 5, 1),
            Some(50_000)
        );
        // Room for 3 more needs both buckets gone: 65s.
        assert_eq!(
            w.wait_for_room_ms(10_000, Metric::Requests, 5, 3),
            Some(55_000)
        );
        assert_eq!(w.wait_for_room_ms(10_000, Metric::Requests, 10, 1), Some(0));
        assert_eq!(w.wait_for_room_ms(10_000, Metric::Requests, 5, 6), None);
    }

    #[test]
    fn history_is_zero_filled_and_oldest_first() {
        let mut w = SlidingWindow::day();
        w.add(60_000, 1, 10);
        w.add(180_000, 2, 20);
        let h = w.history(180_000, 4);
        assert_eq!(
            h,
            vec![
                (0, 0, 0),
                (60_000, 1, 10),
                (120_000, 0, 0),
                (180_000, 2, 20)
            ]
        );
    }

    #[test]
    fn a_clock_stepping_back_counts_in_the_newest_bucket() {
        let mut w = SlidingWindow::minute();
        w.add(5_000, 1, 0);
        w.add(4_000, 1, 0);
        assert_eq!(w.total(Metric::Requests), 2);
    }
}
