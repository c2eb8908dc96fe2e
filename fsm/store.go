package fsm

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/kdnsd/kdnsd/internal/boltguard"
)

var (
	bucketMeta       = []byte("meta")
	bucketServices   = []byte("services")
	bucketSlices     = []byte("slices")
	bucketNamespaces = []byte("namespaces")
	bucketPods       = []byte("pods")
	keyApplied       = []byte("applied")
	keyTracked       = []byte("tracked")
	keyConfig        = []byte("config")
	// recordBuckets hold the records; a restore replaces them all.
	recordBuckets = [][]byte{bucketServices, bucketSlices, bucketNamespaces, bucketPods}
)

// Entry is one Raft log entry handed to the store.
type Entry struct {
	Index uint64
	Data  []byte
	// AppendedAt is when the leader appended the entry to its log, by the
	// leader's clock; zero when unknown.
	AppendedAt time.Time
}

// Store is the durable state machine. It is safe for concurrent use; apply
// and restore calls are serialized by the caller (Raft's FSM goroutine).
type Store struct {
	path string
	db   *bolt.DB
	log  *slog.Logger
	view atomic.Pointer[View]
	// blocked is set once an entry did not decode; see ApplyEntries.
	blocked atomic.Pointer[BlockedError]
	// maxVersion is the newest command format the store decodes:
	// MaxCommandVersion, except in tests that play two builds in one.
	maxVersion int

	mu   sync.Mutex
	subs map[chan struct{}]struct{}
}

// Open opens (creating if needed) the store's file and publishes what it
// holds at once. A corrupt file gives an error and is left untouched.
func Open(path string, logger *slog.Logger) (*Store, error) {
	if logger == nil {
		logger = slog.Default()
	}
	const keep = "the file is kept as it is; to rebuild this replica, move its data dir away and let it rejoin the cluster"
	var s *Store
	err := boltguard.Open(func() error {
		readAhead(path)
		db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 2 * time.Second})
		if err != nil {
			if errors.Is(err, bolt.ErrTimeout) {
				return fmt.Errorf("open %s: file is locked; is another kdnsd using this data dir?", path)
			}
			return fmt.Errorf("open %s: %w (%s)", path, err, keep)
		}
		s = &Store{path: path, db: db, log: logger, subs: map[chan struct{}]struct{}{}, maxVersion: MaxCommandVersion}
		v, err := s.load()
		if err != nil {
			db.Close()
			return fmt.Errorf("read %s: %w (%s)", path, err, keep)
		}
		s.view.Store(v)
		s.releaseMapping() // every record was read
		return nil
	})
	if errors.Is(err, boltguard.ErrCorrupt) {
		return nil, fmt.Errorf("open %s: %w (%s)", path, err, keep)
	}
	return s, err
}

// readAhead reads the file at path once, in order, into the page cache.
// bbolt advises the kernel that its map of the file is read at random (no
// readahead), so a load from a file the page cache did not hold (a node
// just booted) brought its pages in one by one from the disk: an open at
// 100k services took 1.7-1.8 s instead of 0.5 s. Read in order first, the
// file comes in at the disk's sequential speed (0.14 s there); when it is
// cached already, the read costs ~10 ms (BENCHMARKS.md). Best effort: a
// file that cannot be read fails the open that follows, with its error.
func readAhead(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for {
		if _, err := f.Read(buf); err != nil {
			return
		}
	}
}

func (s *Store) load() (*View, error) {
	if err := s.createBuckets(); err != nil {
		return nil, err
	}
	var r Records
	var index uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if raw := meta.Get(keyApplied); raw != nil {
			if len(raw) != 8 {
				return fmt.Errorf("applied index has %d bytes, want 8", len(raw))
			}
			index = binary.BigEndian.Uint64(raw)
		}
		if raw := meta.Get(keyTracked); raw != nil {
			if err := json.Unmarshal(raw, &r.Tracked); err != nil {
				return fmt.Errorf("tracked kinds: %w", err)
			}
		}
		if raw := meta.Get(keyConfig); raw != nil {
			r.Config = new(ConfigState)
			if err := json.Unmarshal(raw, r.Config); err != nil {
				return fmt.Errorf("dns configuration: %w", err)
			}
		}
		return tx.Bucket(bucketNamespaces).ForEach(func(k, _ []byte) error {
			r.Namespaces = append(r.Namespaces, string(k))
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	// The record buckets are read at once, each in a read transaction of
	// its own (a bbolt transaction is one goroutine's): a bucket's walk
	// takes one core, ~0.1 s at 100k records, and while one bucket is
	// walked another's records are decoded. No transaction writes while
	// the store opens, so all of them read the same state of the file.
	var loads bucketLoads
	loadAsync(&loads, 0, s.db, bucketServices, "service", &r.Services)
	loadAsync(&loads, 1, s.db, bucketSlices, "endpoint slice", &r.Slices)
	loadAsync(&loads, 2, s.db, bucketPods, "pod", &r.Pods)
	if err := loads.wait(); err != nil {
		return nil, err
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r.View(index), nil
}

// bucketLoads are the record buckets being read by loadAsync.
type bucketLoads struct {
	wg   sync.WaitGroup
	errs [3]error
	// panics holds what a load panicked with: bbolt panics on some damaged
	// pages, and wait panics with it again on its caller's goroutine, where
	// boltguard.Open makes it the error of a corrupt file.
	panics [3]any
}

// loadAsync reads bucket into out with loadBucket, in a read transaction
// of its own on a goroutine of its own, as load i of l.
func loadAsync[T any, P interface {
	*T
	compact()
}](l *bucketLoads, i int, db *bolt.DB, bucket []byte, what string, out *[]*T) {
	l.wg.Go(func() {
		defer func() { l.panics[i] = recover() }()
		l.errs[i] = db.View(func(tx *bolt.Tx) error {
			var err error
			*out, err = loadBucket[T, P](tx, bucket, what)
			return err
		})
	})
}

// wait waits for every load, and returns their errors.
func (l *bucketLoads) wait() error {
	l.wg.Wait()
	for _, p := range l.panics {
		if p != nil {
			panic(p)
		}
	}
	return errors.Join(l.errs[:]...)
}

// createBuckets creates the buckets a new file lacks. A file that has them
// is not written: a write transaction would cost a restart a sync.
func (s *Store) createBuckets() error {
	buckets := append([][]byte{bucketMeta}, recordBuckets...)
	missing := false
	err := s.db.View(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			missing = missing || tx.Bucket(b) == nil
		}
		return nil
	})
	if err != nil || !missing {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		for _, b := range buckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
}

// loadChunk is how many records a goroutine of loadBucket decodes at
// least: fewer cost more to hand over than to decode.
const loadChunk = 512

// loadBucket decodes every value of bucket (decodeRecord, then compact), on
// every core (a restart at 100k services spends most of its load here), and
// returns them in the bucket's order. An error names the first record, in
// that order, that does not decode.
//
// The records are decoded into arrays of loadChunk, not allocated one by
// one: the decoder's garbage (goccy/go-json's slices of four) shares the
// records' size classes, and records among it kept most of the memory of
// that garbage from the OS after it was collected. A chunk lives until the
// last of its records is replaced, so it holds at most what the load did.
func loadBucket[T any, P interface {
	*T
	compact()
}](tx *bolt.Tx, bucket []byte, what string) ([]*T, error) {
	var keys, raws [][]byte
	err := tx.Bucket(bucket).ForEach(func(k, raw []byte) error {
		keys, raws = append(keys, k), append(raws, raw)
		return nil
	})
	if err != nil || len(raws) == 0 {
		return nil, err
	}
	out := make([]*T, len(raws))
	workers := min(runtime.GOMAXPROCS(0), (len(raws)+loadChunk-1)/loadChunk)
	failedAt := make([]int, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		lo, hi := w*len(raws)/workers, (w+1)*len(raws)/workers
		wg.Go(func() {
			var chunk []T
			for i := lo; i < hi; i++ {
				if len(chunk) == 0 {
					chunk = make([]T, min(loadChunk, hi-i))
				}
				v := &chunk[0]
				chunk = chunk[1:]
				if err := decodeRecord(raws[i], v); err != nil {
					failedAt[w], errs[w] = i, err
					return
				}
				P(v).compact()
				out[i] = v
			}
		})
	}
	wg.Wait()
	for w, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s %q: %w", what, keys[failedAt[w]], err)
		}
	}
	return out, nil
}

// Path is the store's file.
func (s *Store) Path() string { return s.path }

// View returns the current state. It never blocks.
func (s *Store) View() *View { return s.view.Load() }

// Subscribe returns a channel that receives a value after each new View is
// published. Notifications coalesce: a slow reader sees one signal for many
// Views and then reads View. cancel ends the subscription.
func (s *Store) Subscribe() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	return ch, func() {
		s.mu.Lock()
		delete(s.subs, ch)
		s.mu.Unlock()
	}
}

func (s *Store) publish(v *View) {
	s.view.Store(v)
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// BlockedError says that the store stopped applying the log at Index: the
// entry there does not decode with this build (Err says why).
type BlockedError struct {
	Index uint64
	Err   error
}

func (e *BlockedError) Error() string {
	return fmt.Sprintf("stopped applying the raft log at entry %d, which this build cannot decode: %v", e.Index, e.Err)
}

func (e *BlockedError) Unwrap() error { return e.Err }

// Blocked returns what stopped the store from applying, or nil while it
// applies.
func (s *Store) Blocked() *BlockedError { return s.blocked.Load() }

// ApplyEntries applies log entries in order, durably, in one transaction,
// and publishes the result. Entries at or below the applied index are
// skipped.
//
// An entry that does not decode (see Decode) stops the store for good: the
// entries before it are applied, it and every later one are not, and the
// applied index stays below it. ApplyEntries then returns a *BlockedError,
// now and on every later call, and Blocked reports it; the store keeps
// serving its last View. Skipping the entry instead would let this replica's
// records differ, silently, from those of replicas that can read it (a newer
// release's). Only a new Store, opened by a build that decodes the entry,
// applies it: the store on disk still ends before it.
//
// Any other error is a storage failure: the state on disk is then unchanged
// and the caller must not go on applying.
func (s *Store) ApplyEntries(entries []Entry) error {
	if b := s.Blocked(); b != nil {
		return b
	}
	c := newChange(s.View())
	applied := false
	var blocked *BlockedError
	for _, e := range entries {
		if e.Index <= c.next.index {
			continue
		}
		cmds, err := decode(e.Data, s.maxVersion)
		if err != nil {
			blocked = &BlockedError{Index: e.Index, Err: err}
			break
		}
		c.next.index, c.next.appendedAt = e.Index, e.AppendedAt
		applied = true
		for j := range cmds {
			c.apply(&cmds[j])
		}
	}
	if applied {
		if err := s.commit(c); err != nil {
			return err
		}
	}
	if blocked != nil {
		s.blocked.Store(blocked)
		s.log.Error("stopped applying the raft log: this replica keeps serving its last state and is not ready; "+
			"run a kdnsd release that decodes the entry (it applies the entry and the rest of the log when it starts)",
			"index", blocked.Index, "applied_index", s.View().Index(), "err", blocked.Err)
		return blocked
	}
	return nil
}

// commit writes what c changed and its index in one transaction, then
// publishes the new View.
func (s *Store) commit(c *change) error {
	next := c.done()
	err := s.db.Update(func(tx *bolt.Tx) error {
		svcs, sls := tx.Bucket(bucketServices), tx.Bucket(bucketSlices)
		for k := range c.touchedSvc {
			if err := putOrDelete(svcs, k.Namespace+"/"+k.Name, next.Service(k)); err != nil {
				return err
			}
		}
		for k := range c.touchedSlic {
			if err := putOrDelete(sls, k.Namespace+"/"+k.Name, next.Slice(k)); err != nil {
				return err
			}
		}
		nss, pods := tx.Bucket(bucketNamespaces), tx.Bucket(bucketPods)
		for name := range c.touchedNS {
			if err := putNamespace(nss, name, next.HasNamespace(name)); err != nil {
				return err
			}
		}
		for k := range c.touchedPods {
			if err := putOrDelete(pods, k.Namespace+"/"+k.Name, next.Pod(k)); err != nil {
				return err
			}
		}
		if c.touchedTracks {
			if err := putTracked(tx, next.tracked); err != nil {
				return err
			}
		}
		if c.touchedConfig {
			if err := putConfig(tx, next.config); err != nil {
				return err
			}
		}
		return putIndex(tx, next.index)
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	s.publish(next)
	s.releaseMapping() // the writes read the pages on their keys' paths
	return nil
}

func putOrDelete[T any](b *bolt.Bucket, key string, value *T) error {
	if value == nil {
		return b.Delete([]byte(key))
	}
	raw, err := json.Marshal(value)
	if err != nil {
		return err
	}
	return b.Put([]byte(key), raw)
}

// putNamespace records whether namespace name exists: a key without value.
func putNamespace(b *bolt.Bucket, name string, exists bool) error {
	if !exists {
		return b.Delete([]byte(name))
	}
	return b.Put([]byte(name), []byte{})
}

func putTracked(tx *bolt.Tx, t Tracked) error {
	raw, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyTracked, raw)
}

func putConfig(tx *bolt.Tx, st *ConfigState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketMeta).Put(keyConfig, raw)
}

func putIndex(tx *bolt.Tx, index uint64) error {
	var raw [8]byte
	binary.BigEndian.PutUint64(raw[:], index)
	return tx.Bucket(bucketMeta).Put(keyApplied, raw[:])
}

// Snapshot formats: the first byte of a snapshot; a JSON snapshotBody
// follows. Format 1 holds services and endpoint slices only, and is what a
// View without namespaces, pods, tracked kinds or configuration is written
// in, so that a
// build that knows format 1 only can still install it; format 2 holds
// everything. An older build refuses a format-2 snapshot rather than
// dropping the records it does not know.
const (
	snapshotFormatV1 byte = 1
	snapshotFormatV2 byte = 2
)

type snapshotBody struct {
	Index      uint64           `json:"index"`
	Services   []*Service       `json:"services"`
	Slices     []*EndpointSlice `json:"slices"`
	Namespaces []string         `json:"namespaces,omitempty"`
	Pods       []*Pod           `json:"pods,omitempty"`
	Tracked    *Tracked         `json:"tracked,omitempty"`
	Config     *ConfigState     `json:"config,omitempty"`
}

// WriteSnapshot writes the whole of v to w.
func WriteSnapshot(w io.Writer, v *View) error {
	body := snapshotBody{Index: v.index}
	for svc := range v.Services() {
		body.Services = append(body.Services, svc)
	}
	for sl := range v.Slices() {
		body.Slices = append(body.Slices, sl)
	}
	for ns := range v.Namespaces() {
		body.Namespaces = append(body.Namespaces, ns)
	}
	for p := range v.Pods() {
		body.Pods = append(body.Pods, p)
	}
	format := snapshotFormatV1
	if v.tracked != (Tracked{}) {
		body.Tracked = &v.tracked
	}
	if *v.config != (ConfigState{}) {
		body.Config = v.config
	}
	if len(body.Namespaces) > 0 || len(body.Pods) > 0 || body.Tracked != nil || body.Config != nil {
		format = snapshotFormatV2
	}
	if _, err := w.Write([]byte{format}); err != nil {
		return err
	}
	return json.NewEncoder(w).Encode(&body)
}

// ReadSnapshot reads a snapshot written by WriteSnapshot into a View.
func ReadSnapshot(r io.Reader) (*View, error) {
	var format [1]byte
	if _, err := io.ReadFull(r, format[:]); err != nil {
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	if format[0] != snapshotFormatV1 && format[0] != snapshotFormatV2 {
		return nil, fmt.Errorf("read snapshot: %w: version byte %d", ErrUnknownFormat, format[0])
	}
	dec := json.NewDecoder(r)
	if format[0] == snapshotFormatV1 {
		// Format 1 holds services and slices only: a field of format 2
		// in it is corruption, not something to read.
		dec.DisallowUnknownFields()
	}
	var body snapshotBody
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("read snapshot: corrupt: %w", err)
	}
	rec := Records{Services: body.Services, Slices: body.Slices, Namespaces: body.Namespaces, Pods: body.Pods, Config: body.Config}
	if body.Tracked != nil {
		rec.Tracked = *body.Tracked
	}
	if format[0] == snapshotFormatV1 && (len(rec.Namespaces) > 0 || len(rec.Pods) > 0 || body.Tracked != nil || body.Config != nil) {
		return nil, errors.New("read snapshot: corrupt: format 1 with namespaces, pods, tracked kinds or configuration")
	}
	if err := rec.validate(); err != nil {
		return nil, fmt.Errorf("read snapshot: corrupt: %w", err)
	}
	rec.compact()
	return rec.View(body.Index), nil
}

// Restore replaces the whole state with a snapshot, durably, in one
// transaction, as of Raft log index index. The index is given rather than
// read from the snapshot because a snapshot restored into another cluster
// (disaster recovery) takes that cluster's index. A corrupt snapshot changes
// nothing.
func (s *Store) Restore(r io.Reader, index uint64) error {
	v, err := ReadSnapshot(r)
	if err != nil {
		return err
	}
	v.index = index
	if cur := s.View(); v.index < cur.index {
		s.log.Warn("restoring a snapshot older than the applied state; later log entries will be applied again",
			"snapshot_index", v.index, "applied_index", cur.index)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		for _, name := range recordBuckets {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		svcs, sls := tx.Bucket(bucketServices), tx.Bucket(bucketSlices)
		for svc := range v.services.All() {
			if err := putOrDelete(svcs, svc.Namespace+"/"+svc.Name, svc); err != nil {
				return err
			}
		}
		for sl := range v.slices.All() {
			if err := putOrDelete(sls, sl.Namespace+"/"+sl.Name, sl); err != nil {
				return err
			}
		}
		nss, pods := tx.Bucket(bucketNamespaces), tx.Bucket(bucketPods)
		for ns := range v.namespaces {
			if err := putNamespace(nss, ns, true); err != nil {
				return err
			}
		}
		for p := range v.Pods() {
			if err := putOrDelete(pods, p.Namespace+"/"+p.Name, p); err != nil {
				return err
			}
		}
		if err := putTracked(tx, v.tracked); err != nil {
			return err
		}
		if err := putConfig(tx, v.config); err != nil {
			return err
		}
		return putIndex(tx, v.index)
	})
	if err != nil {
		return fmt.Errorf("write %s: %w", s.path, err)
	}
	s.publish(v)
	s.releaseMapping() // deleting the old buckets read every page of them
	return nil
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }
