package pipeline

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
)

// Route errors.
var (
	ErrInvalidPrefix = errors.New("invalid prefix")
	ErrRouteNotFound = errors.New("route not found")
)

// Route is one entry of a RouteTable: a canonical (masked) prefix and the
// next-hop index the caller chose for it.
type Route struct {
	Prefix  netip.Prefix
	NextHop uint32
}

// RouteTable is a longest-prefix-match table from IPv4 and IPv6 prefixes to
// next-hop indexes, for the L3 routing stage.
//
// Add and Del are serialized by a mutex; each builds a new immutable
// snapshot by copying the trie nodes on the changed path and publishes it
// with one atomic store. Lookup4 and Lookup6 read the current snapshot
// without locks and without allocating, so they may run on any number of
// workers while the control path changes routes.
//
// Each family is a multibit trie with 8-bit strides (4 levels for IPv4, 16
// for IPv6). Rather than expanding prefixes into 256-slot arrays, a node
// keeps two bitmaps in the style of ART/BART: one over the 510 prefixes of
// length 1..8 a stride can hold (heap-indexed, so a prefix's ancestors are
// its index shifted right) and one over its 256 children, with values and
// children packed by popcount rank. A node costs about 150 bytes plus 4
// bytes a value and 8 a child, so memory grows with the routes, not with
// the address space they cover.
type RouteTable struct {
	mu     sync.Mutex
	routes map[netip.Prefix]uint32 // canonical prefixes; guarded by mu
	cur    atomic.Pointer[routeSnapshot]
}

// routeSnapshot is immutable once published.
type routeSnapshot struct {
	root4, root6 *lpmNode
}

// lpmNode covers one 8-bit stride. A prefix of relative length r (1..8)
// whose top r bits of this stride's byte are v has index 1<<r|v; index 1
// (length 0) is used only in a root, for the default route. A node is
// never changed after it is published.
//
// The fields the descent reads (kid, kids) come first so that a lookup
// passing through a node mostly touches one cache line of it.
type lpmNode struct {
	kid  [4]uint64 // bit b: a child for byte b
	kids []*lpmNode
	nhs  []uint32  // next hops, in index order
	pfx  [8]uint64 // bit i: a prefix with index i is stored here
}

// lpmShortAnc[b] has the bits of the indexes (2..63) of the prefixes of
// length 1..5 that contain byte b, all of which live in pfx[0].
var lpmShortAnc = func() (m [256]uint64) {
	for b := range m {
		for r := 1; r <= 5; r++ {
			m[b] |= 1 << pfxIndex(byte(b), r)
		}
	}
	return m
}()

// NewRouteTable returns an empty table.
func NewRouteTable() *RouteTable {
	t := &RouteTable{routes: make(map[netip.Prefix]uint32)}
	t.cur.Store(&routeSnapshot{root4: &lpmNode{}, root6: &lpmNode{}})
	return t
}

// canonicalPrefix masks p and turns an IPv4-mapped IPv6 prefix of at least
// 96 bits into the IPv4 prefix it maps.
func canonicalPrefix(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() || p.Addr().Zone() != "" {
		return netip.Prefix{}, ErrInvalidPrefix
	}
	p = p.Masked()
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p, nil
}

// Add routes p to next hop nh, replacing p's next hop if p is already in
// the table. p is masked to its canonical form first.
func (t *RouteTable) Add(p netip.Prefix, nh uint32) error {
	cp, err := canonicalPrefix(p)
	if err != nil {
		return fmt.Errorf("add route %v: %w", p, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.routes[cp] = nh
	s := *t.cur.Load()
	a := cp.Addr().AsSlice()
	if cp.Addr().Is4() {
		s.root4 = s.root4.insert(a, cp.Bits(), nh)
	} else {
		s.root6 = s.root6.insert(a, cp.Bits(), nh)
	}
	t.cur.Store(&s)
	return nil
}

// Del removes p (after masking) from the table; a lookup that matched it
// falls back to the next shorter matching prefix.
func (t *RouteTable) Del(p netip.Prefix) error {
	cp, err := canonicalPrefix(p)
	if err != nil {
		return fmt.Errorf("delete route %v: %w", p, err)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.routes[cp]; !ok {
		return fmt.Errorf("delete route %v: %w", p, ErrRouteNotFound)
	}
	delete(t.routes, cp)
	s := *t.cur.Load()
	a := cp.Addr().AsSlice()
	if cp.Addr().Is4() {
		s.root4 = s.root4.remove(a, cp.Bits(), true)
	} else {
		s.root6 = s.root6.remove(a, cp.Bits(), true)
	}
	t.cur.Store(&s)
	return nil
}

// Routes returns a copy of the table's routes in canonical form, IPv4
// first, each family ordered by address and then by prefix length.
func (t *RouteTable) Routes() []Route {
	t.mu.Lock()
	rs := make([]Route, 0, len(t.routes))
	for p, nh := range t.routes {
		rs = append(rs, Route{Prefix: p, NextHop: nh})
	}
	t.mu.Unlock()
	slices.SortFunc(rs, func(a, b Route) int {
		if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
			return c
		}
		return a.Prefix.Bits() - b.Prefix.Bits()
	})
	return rs
}

// Lookup4 returns the next hop of the longest prefix that contains ip.
// It takes no lock and does not allocate.
func (t *RouteTable) Lookup4(ip [4]byte) (nh uint32, ok bool) {
	return t.cur.Load().root4.lookup(ip[:])
}

// Lookup6 returns the next hop of the longest IPv6 prefix that contains
// ip. IPv4-mapped addresses are not looked up in the IPv4 table. It takes
// no lock and does not allocate.
func (t *RouteTable) Lookup6(ip [16]byte) (nh uint32, ok bool) {
	return t.cur.Load().root6.lookup(ip[:])
}

// lookup walks down to the deepest node on ip's path, then back up: the
// first node with a prefix matching its byte of ip holds the longest match.
func (root *lpmNode) lookup(ip []byte) (uint32, bool) {
	var path [16]*lpmNode
	n := root
	depth := 0
	for depth < len(ip) {
		path[depth] = n
		b := ip[depth]
		depth++
		if n.kid[b>>6]&(1<<(b&63)) == 0 {
			break
		}
		n = n.kids[n.kidRank(b)]
	}
	for d := depth - 1; d >= 0; d-- {
		if nh, ok := path[d].match(ip[d]); ok {
			return nh, true
		}
	}
	if root.pfx[0]&2 != 0 { // default route
		return root.nhs[0], true
	}
	return 0, false
}

// match returns the value of the longest prefix of length 1..8 in n that
// contains byte b.
func (n *lpmNode) match(b byte) (uint32, bool) {
	if len(n.nhs) == 0 {
		return 0, false
	}
	// Lengths 8, 7 and 6 each sit in a word of their own; 1..5 share
	// pfx[0], where the longest is the highest ancestor bit set.
	for idx := 256 | uint(b); idx >= 64; idx >>= 1 {
		if n.pfx[idx>>6]&(1<<(idx&63)) != 0 {
			return n.nhs[n.pfxRank(idx)], true
		}
	}
	if m := n.pfx[0] & lpmShortAnc[b]; m != 0 {
		idx := uint(63 - bits.LeadingZeros64(m))
		return n.nhs[bits.OnesCount64(n.pfx[0]&(1<<idx-1))], true
	}
	return 0, false
}

// pfxRank is the number of prefix bits set below idx.
func (n *lpmNode) pfxRank(idx uint) int {
	w := idx >> 6
	r := bits.OnesCount64(n.pfx[w] & (1<<(idx&63) - 1))
	for i := uint(0); i < w; i++ {
		r += bits.OnesCount64(n.pfx[i])
	}
	return r
}

// kidRank is the number of child bits set below b.
func (n *lpmNode) kidRank(b byte) int {
	w := b >> 6
	r := bits.OnesCount64(n.kid[w] & (1<<(b&63) - 1))
	for i := byte(0); i < w; i++ {
		r += bits.OnesCount64(n.kid[i])
	}
	return r
}

// pfxIndex is the index of the prefix of plen bits (1..8 relative to the
// stride) whose stride byte is b; plen 0 is index 1.
func pfxIndex(b byte, plen int) uint {
	if plen == 0 {
		return 1
	}
	return 1<<uint(plen) | uint(b)>>(8-uint(plen))
}

// clone copies n (or makes an empty node) so that the copy can be changed
// without touching a published snapshot.
func (n *lpmNode) clone() *lpmNode {
	if n == nil {
		return &lpmNode{}
	}
	c := &lpmNode{pfx: n.pfx, kid: n.kid}
	c.nhs = slices.Clone(n.nhs)
	c.kids = slices.Clone(n.kids)
	return c
}

// insert returns a copy of n with the prefix of plen bits of a (relative to
// n's stride, which starts at a[0]) set to nh.
func (n *lpmNode) insert(a []byte, plen int, nh uint32) *lpmNode {
	c := n.clone()
	if plen <= 8 {
		idx := pfxIndex(a[0], plen)
		r := c.pfxRank(idx)
		if c.pfx[idx>>6]&(1<<(idx&63)) != 0 {
			c.nhs[r] = nh
		} else {
			c.pfx[idx>>6] |= 1 << (idx & 63)
			c.nhs = slices.Insert(c.nhs, r, nh)
		}
		return c
	}
	b := a[0]
	r := c.kidRank(b)
	if c.kid[b>>6]&(1<<(b&63)) != 0 {
		c.kids[r] = c.kids[r].insert(a[1:], plen-8, nh)
	} else {
		c.kid[b>>6] |= 1 << (b & 63)
		c.kids = slices.Insert(c.kids, r, (*lpmNode)(nil).insert(a[1:], plen-8, nh))
	}
	return c
}

// remove returns a copy of n without the prefix of plen bits of a, or nil
// if the copy would be empty and is not a root. The prefix must be present.
func (n *lpmNode) remove(a []byte, plen int, root bool) *lpmNode {
	c := n.clone()
	if plen <= 8 {
		idx := pfxIndex(a[0], plen)
		c.nhs = slices.Delete(c.nhs, c.pfxRank(idx), c.pfxRank(idx)+1)
		c.pfx[idx>>6] &^= 1 << (idx & 63)
	} else {
		b := a[0]
		r := c.kidRank(b)
		if k := c.kids[r].remove(a[1:], plen-8, false); k != nil {
			c.kids[r] = k
		} else {
			c.kid[b>>6] &^= 1 << (b & 63)
			c.kids = slices.Delete(c.kids, r, r+1)
		}
	}
	if !root && len(c.nhs) == 0 && len(c.kids) == 0 {
		return nil
	}
	return c
}
