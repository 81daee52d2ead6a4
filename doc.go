/*
Package bigqueue is an embedded, persistent FIFO queue kept in a directory of
memory-mapped files, with named consumers whose positions survive restarts.

It has the API of github.com/grandecola/bigqueue v0.6.0, so a program can
switch by changing the import path, and adds crash safety, disk that is given
back once consumers have read past it, a disk cap, blocking and
allocation-free reads, batches and consumer management.

# Basics

	q, err := bigqueue.NewMmapQueue(dir)          // dir must exist
	err = q.Enqueue([]byte("hello"))
	msg, err := q.Dequeue()                      // ErrEmptyQueue when there is none
	err = q.Close()                              // reports a failed background flush too

A message may have any length, including zero and more than an arena. The
queue reads through a default consumer (Dequeue, Peek, Len, IsEmpty on the
queue); NewConsumer("name") gives another reader with its own position, which
starts at the oldest message kept and is found again by name after a restart.

# Reading with commits

Every message has an offset: 0 for the first message ever enqueued, one more
for each after it, never reused. A named consumer has a cursor, where Read
reads next, and a committed offset, where a reopened queue puts the cursor
back. Read moves only the cursor; Commit makes the cursor the committed
offset. So the safe way to consume is read, process, commit:

	for m, err := range c.Messages(ctx) { // Read, waiting for new messages
		if err != nil { ... }
		process(m.Offset, m.Data)
		if err := c.Commit(); err != nil { ... }
	}

A crash between Read and Commit delivers the message again (at least once).
Dequeue is Read and Commit in one step: the reference's behaviour. Seek
moves the cursor anywhere from the oldest message kept to the next offset
(Offsets), to replay or to skip; CommitOffset commits any offset of that
range. Both cost at most a walk over one arena's record headers: the offset
index (offsetindex.go, offsets.dat) knows where each arena's first message
starts; the writer appends to it as it starts each arena, so a reader in
another process (OpenReader) seeks as cheaply. The index is what numbers
the messages after a damaged header: with offsets.dat missing or damaged
too, Seek past that header fails with ErrCorrupt. A damaged record makes
Read return ErrCorrupt naming its offset, without moving the cursor; Seek(offset+1) moves past it when its length can
still be trusted, and Seek to the first offset of any later arena always
works. The queue keeps every message at or after any consumer's cursor or
committed offset, and SetRetention keeps consumed ones for replay.

# Readers beside the writer

One MmapQueue writes a directory (NewMmapQueue takes an advisory lock);
OpenReader opens it beside that writer, in another process or the same one,
without the lock and without changing a file. A reader sees a message as soon
as Enqueue has returned in the writer: the writer publishes the tail in the
live slot of index.dat with a release store, and the reader verifies every
record it reads (reader.go states the protocol). A reader has Peek, Len,
IsEmpty, Offsets, Stats, Check and named consumers of its own; each named
consumer is held by one process at a time, and the writer keeps what any
process's consumer has not committed (shared.go). What would change the
queue's records or index returns ErrReadOnly.

# Durability

What survives a crash, as a contract:

 1. When Enqueue, EnqueueBatch, a Dequeue or a Commit returns, its effect survives a
    crash of the process (kill -9): the data is in memory shared with the
    kernel's page cache.
 2. When Flush returns, every effect before it survives a crash of the
    machine (power loss): arenas, then consumer files, then the index are
    synced to disk, in that order.
 3. Reopening after any crash gives the queue as of some moment at or after
    the last completed Flush: a FIFO prefix of what was enqueued, nothing
    reordered, nothing invented, nothing flushed lost. Dequeues that were not
    flushed may be delivered again (at least once). A batch is kept whole or
    not at all.

Every record carries a CRC-32C over its position, length and bytes. The index
remembers the tail the last Flush made durable; on open, only the records
after it are verified, and the queue ends before the first one that fails. A
region of zeros never parses as a record. Dequeue verifies the checksum of
every record that was on disk when the queue was opened, so damage done to a
closed queue's files is found; records written since open are served from
the page cache they were written to and not checked again (the lock keeps
other writers out). Check verifies every record.

By default a background flush runs every second and after every 1,000,000
enqueues and dequeues (SetPeriodicFlushDuration, SetPeriodicFlushOps). Close
flushes too.

# Disk

The stream of records is cut into arena files of a fixed size
(SetArenaSize, 128 MiB by default) whose space is reserved with fallocate
(F_PREALLOCATE on macOS) before they are written, so a full file system makes
Enqueue return an error instead of killing the process.

An arena that every consumer, the default one included, has read past is
retired once the positions that passed it are durable: at the next flush, or
at once on Dequeue for arenas of 16 MiB or more, which syncs only the small
position files. Disk use follows the slowest consumer. Up to two retired
arenas are kept, renamed, for the writer to reuse (creating a file is slow, a
reused one is allocated and often still cached); the others are deleted. A
flush that finds every message read deletes the spares too: a drained queue
holds its tail's arena only.
For arenas of 64 KiB or more, from a queue's second arena on, the writer's
next arena file is created on another goroutine while it fills the current
one, and counts as one of the two. SetMaxDiskUsage caps the queue's files (no spares are kept and no file
is created ahead under it); Enqueue returns ErrQueueFull past the cap.

At most SetMaxInMemArenas arenas (3 by default, 0 for no cap) are mapped at
once. Under a cap, readers read arenas that are not mapped through a window
per consumer instead of mapping them: with pread, 64 KiB at a time, or for
arenas of 1 MiB or more through a mapping of 1 MiB of the arena at a time.
Without a cap, the queues of a process still keep at most seven eighths of
vm.max_map_count arenas mapped between them, so that the Go runtime can
always map memory of its own; past that, readers use their windows too.

# Concurrency

Every method of MmapQueue and Consumer is safe for concurrent use. A directory
is opened by one MmapQueue at a time: another open, in this process or
another, fails with ErrLocked. After Close every method returns ErrClosed
(IsEmpty returns true, Len 0).

# Errors

Errors are sentinels (ErrEmptyQueue, ErrCorrupt, ErrClosed, ...) or wrap one
with the file, position or value involved: test them with errors.Is. A
message says "bigqueue: " once, at its start. ErrEmptyQueue,
ErrInvalidArenaSize, ErrDifferentQueues, ErrTooSmallArenaSize and
ErrTooFewInMemArenas come unwrapped, as from the reference, so that == works
for them too, and an error that wraps one other unwraps with errors.Unwrap,
as fmt.Errorf's does. Damaged files give ErrCorrupt or
ErrIncompatibleVersion, never a panic; Dequeue of a record whose checksum
fails returns ErrCorrupt and does not move the consumer. A named consumer
whose file is damaged costs that consumer only: the queue opens without
it, its name gets ErrCorrupt, Stats lists the file in DamagedConsumers and
Check reports it, and no arena is deleted until DeleteConsumer removes it
(what it still needed cannot be known). Files are checked before they are
mapped, on open and, for the consumer files other processes write, before
each look; a file that another program cuts short while this process has
it mapped (an arena, or a consumer file this process holds) faults like any
memory-mapped file.

# Files

A queue directory holds:

	LOCK                   advisory lock of the writer
	LOCK.reclaim           consumers created, deleted or moved back vs the writer reclaiming (shared.go)
	wake.dat               the word readers sleep on, and the writer wakes (wake.go)
	index.dat              arena size, head and tail (index.go)
	offsets.dat            where each arena's first message starts (offsetindex.go)
	consumer-default.dat   the default consumer's committed offset (consumer.go)
	consumer-<hash>.dat    one per named consumer
	arena-<id>.dat         the records (record.go), arenaSize bytes each
*/
package bigqueue
