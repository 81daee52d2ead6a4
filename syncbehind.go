package bigqueue

import "golang.org/x/sys/unix"

// Syncing ahead of a flush, without the queue's lock.
//
// A flush syncs, under the queue's lock, the arena bytes written since the
// last one, and every Enqueue and Dequeue waits meanwhile. At full speed a
// second of 128-byte messages is over 100 MiB, and its msync took 180-210
// ms here: the periodic flush (every second, or every million operations,
// by default) stalled the writer that long. So the flusher, and Flush,
// first msync those bytes with the lock not held, then again what was
// written meanwhile, while that is a MiB or more (at most syncBehindPasses
// times: a writer faster than the disk would keep it going); the flush then
// finds them clean, and its own msync, which is the one a flush's promise
// rests on, is short. (sync_file_range on a descriptor was tried first: it
// writes the pages back, but the msync after it still took 50-220 ms; after
// an msync of the same range, the next one takes well under a millisecond.)
//
// The mappings are taken under the lock and synced after it is released:
// an arena can be unmapped meanwhile (evicted, retired). msync of an
// address range that is no longer mapped fails (ENOMEM, ignored), and of
// one mapped again since to something else only syncs that: neither
// touches memory, so neither can do harm, and the flush that follows
// syncs what matters under the lock. The page the writer is filling is
// left out: written back under it, it would be write-protected, and the
// writer's next store would wait for that write.

// syncBehindMin is the least a pass must have to sync to be worth it.
const syncBehindMin = 1 << 20

// syncBehindPasses bounds the passes of syncBehind.
const syncBehindPasses = 8

// testHookSyncBehind, when set by a test, is called after each range is
// synced, with the queue's lock not held; n is its length.
var testHookSyncBehind func(n int)

// syncBehind syncs what the next flush of q would, without holding q's
// lock. Errors are left to the flush to meet.
func (q *MmapQueue) syncBehind() {
	from := int64(-1) // the last flush's tail
	for range syncBehindPasses {
		ranges, to := q.behindRanges(from)
		if len(ranges) == 0 {
			return
		}
		for _, b := range ranges {
			_ = unix.Msync(b, unix.MS_SYNC)
			if testHookSyncBehind != nil {
				testHookSyncBehind(len(b))
			}
		}
		from = to
	}
}

// behindRanges returns, under q's lock, the mapped arena bytes written from
// position from (from the last flush's tail when from is negative) to the
// page the writer is filling, when that is at least syncBehindMin, and
// where it stopped.
func (q *MmapQueue) behindRanges(from int64) ([][]byte, int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if from < 0 {
		from = q.syncedTail.pos
	}
	to := q.tail.pos &^ pageMask
	if q.closed || q.reader || to-from < syncBehindMin {
		return nil, 0
	}
	var ranges [][]byte
	_ = q.s.spans(from, to, func(id int64, lo, hi int) error {
		// Not mapped: the flush syncs its file.
		if a := q.s.am.mapping(id); a != nil {
			ranges = append(ranges, a.data[lo&^pageMask:hi])
		}
		return nil
	})
	return ranges, to
}
