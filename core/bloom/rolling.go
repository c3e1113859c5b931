package bloom

// Rolling is a channel's summary of seen ids: a Filter that is rebuilt from its most
// recent ids once it holds more than its capacity, so the false-positive rate stays at
// the designed value while the wire size never changes (peers such as @waku/sds reject a
// filter of another size). Not safe for concurrent use.
type Rolling struct {
	filter   *Filter
	capacity int
	keep     int
	ids      []string             // insertion order, oldest first
	member   map[string][2]uint64 // the hash seeds of each id held: a roll re-adds without rehashing
	version  uint64               // see Version
}

// NewRolling returns an empty rolling filter sized for capacity ids at errorRate.
func NewRolling(capacity int, errorRate float64, hash Hasher) (*Rolling, error) {
	k, m, err := Size(capacity, errorRate)
	if err != nil {
		return nil, err
	}
	f, err := New(k, m, hash)
	if err != nil {
		return nil, err
	}
	f.SetSizing(capacity, errorRate)
	keep := capacity * 80 / 100
	if keep < 1 {
		keep = 1
	}
	return &Rolling{filter: f, capacity: capacity, keep: keep, member: make(map[string][2]uint64)}, nil
}

// Add records id; a repeated id is not counted twice. When the filter exceeds its
// capacity it is rebuilt from the newest 80 % of its ids.
func (r *Rolling) Add(id string) {
	if _, ok := r.member[id]; ok {
		return
	}
	r.version++
	a, b := r.filter.seeds(id)
	r.member[id] = [2]uint64{a, b}
	r.ids = append(r.ids, id)
	r.filter.addSeeds(a, b)
	if len(r.ids) > r.capacity {
		r.roll()
	}
}

func (r *Rolling) roll() {
	r.version++
	drop := len(r.ids) - r.keep
	for _, id := range r.ids[:drop] {
		delete(r.member, id)
	}
	r.ids = append([]string(nil), r.ids[drop:]...)
	r.filter.Clear()
	for _, id := range r.ids {
		s := r.member[id]
		r.filter.addSeeds(s[0], s[1])
	}
}

// AppendLocations appends the k bit positions of id to dst (as Filter.Locations),
// without hashing again when the filter holds id.
func (r *Rolling) AppendLocations(dst []uint, id string) []uint {
	a, b, ok := r.Seeds(id)
	if !ok {
		a, b = r.filter.seeds(id)
	}
	m := uint64(r.filter.m)
	for i, loc := uint(0), a; i < r.filter.k; i++ {
		dst = append(dst, uint(loc))
		loc = nextLocation(loc, b, m)
	}
	return dst
}

// Version changes whenever the filter does: by one for each new id, and by one more
// when the filter rolls (every word may then differ). A caller that caches the encoded
// filter can patch just the words of the id it added when Version moved by exactly one.
func (r *Rolling) Version() uint64 { return r.version }

// Seeds returns the hash seeds of id when the filter holds it (it was added and not
// rolled out), so that a filter of the same sizing and hash can test it without hashing
// (see SeedTester).
func (r *Rolling) Seeds(id string) (a, b uint64, ok bool) {
	s, ok := r.member[id]
	return s[0], s[1], ok
}

// Test reports whether id may have been added (and not rolled out).
func (r *Rolling) Test(id string) bool { return r.filter.Test(id) }

// Len returns the number of ids the filter currently summarises.
func (r *Rolling) Len() int { return len(r.ids) }

// Filter returns the underlying filter (for serialisation); callers must not modify it.
func (r *Rolling) Filter() *Filter { return r.filter }
