package dnsserver

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/kdnsd/kdnsd/dnswire"
)

// On Linux the fast path moves datagrams in batches: one recvmmsg reads
// every query waiting on the socket (up to batchSize), one sendmmsg sends
// their answers. Under load that divides the system calls per query by the
// batch size; with one query waiting it costs what recvmsg and sendmsg do.
//
// Both are raw system calls (unix.RawSyscall6), which the runtime does not
// bracket with entersyscall and exitsyscall: the socket is non-blocking, so
// neither can hold its thread, and entersyscall wakes the runtime's sysmon
// thread whenever the process was idle, which then polls every 20 µs for a
// while. At 20k queries a second, each query arriving at an idle server,
// that was a fifth of the server's CPU: 21.4 µs of CPU a query with
// unix.Syscall6, 15.2 µs with RawSyscall6 (BENCHMARKS.md).

// batchSize is the most queries read, and answers sent, by one system call.
const batchSize = 32

// readBufSize bounds the queries read: larger ones (MSG_TRUNC) are dropped.
// EDNS requesters announce what they accept, not what they send; a query is
// one question and an OPT record.
const readBufSize = 4096

// mmsghdr is struct mmsghdr: a msghdr and the length received.
type mmsghdr struct {
	hdr unix.Msghdr
	n   uint32
}

// batch is the memory of one socket's batched loop: everything the kernel
// reads from or writes to, allocated once.
type batch struct {
	rbuf  [batchSize][readBufSize]byte
	wbuf  [batchSize][ResponseBufSize]byte
	names [batchSize]unix.RawSockaddrInet6 // large enough for IPv4 too
	riov  [batchSize]unix.Iovec
	roob  [batchSize][128]byte
	rhdr  [batchSize]mmsghdr
	wiov  [batchSize]unix.Iovec
	woob  [batchSize][64]byte
	whdr  [batchSize]mmsghdr

	nread, nwrite, sent int
	errno               syscall.Errno
}

// serveBatched reads and answers queries on c until c is closed, counting
// them into cnt, a block no other goroutine writes.
func (s *udpServer) serveBatched(c *net.UDPConn, cnt *block) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	b := new(batch)
	for i := range batchSize {
		b.riov[i].Base = &b.rbuf[i][0]
		b.riov[i].SetLen(readBufSize)
		h := &b.rhdr[i].hdr
		h.Name = (*byte)(unsafe.Pointer(&b.names[i]))
		h.Iov = &b.riov[i]
		h.SetIovlen(1)
		b.wiov[i].Base = &b.wbuf[i][0]
		w := &b.whdr[i].hdr
		w.Iov = &b.wiov[i]
		w.SetIovlen(1)
	}
	// The callbacks are made once: a closure per call would allocate.
	recv := func(fd uintptr) bool {
		for i := range batchSize {
			h := &b.rhdr[i].hdr
			h.Namelen = unix.SizeofSockaddrInet6
			if s.pktinfo {
				h.Control = &b.roob[i][0]
				h.SetControllen(len(b.roob[i]))
			}
			h.Flags = 0
		}
		n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.rhdr[0])), batchSize, 0, 0, 0)
		if errno == unix.EAGAIN || errno == unix.EINTR {
			return false
		}
		b.nread, b.errno = int(n), errno
		if errno != 0 {
			b.nread = 0
		}
		return true
	}
	send := func(fd uintptr) bool {
		for b.sent < b.nwrite {
			n, _, errno := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&b.whdr[b.sent])), uintptr(b.nwrite-b.sent), 0, 0, 0)
			switch errno {
			case 0:
				b.sent += int(n)
			case unix.EAGAIN:
				return false
			case unix.EINTR:
			default:
				// The first message could not be sent (the client's
				// address, say): skip it.
				s.log.Debug("writing dns response", "err", errno)
				b.sent++
			}
		}
		return true
	}

	for {
		if err := rc.Read(recv); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		if b.errno != 0 {
			s.log.Debug("reading dns queries", "err", b.errno)
			time.Sleep(time.Millisecond) // do not spin on a lasting error
			continue
		}
		b.nwrite = 0
		for i := range b.nread {
			rh := &b.rhdr[i]
			msg := b.rbuf[i][:rh.n]
			if rh.hdr.Flags&unix.MSG_TRUNC != 0 || len(msg) < dnswire.HeaderLen || msg[2]&0x80 != 0 {
				continue // too long, no header, or a response: never answered
			}
			cnt.request(msg)
			k := b.nwrite
			wo := b.woob[k][:0]
			if s.pktinfo {
				wo = replyOOB(b.woob[k][:], b.roob[i][:rh.hdr.Controllen])
			}
			resp, ok := s.h.AnswerUDP(b.wbuf[k][:0], msg)
			if !ok {
				cnt.general.Add(1)
				from, ok := sockaddrAddrPort(&b.names[i])
				if !ok {
					continue
				}
				resp = s.general(c, msg, from, wo, b.wbuf[k][:0])
				if resp == nil {
					continue
				}
				if &resp[0] != &b.wbuf[k][0] {
					resp = b.wbuf[k][:copy(b.wbuf[k][:], resp)] // never larger: UDP-sized
				}
			}
			cnt.response(resp)
			w := &b.whdr[k].hdr
			w.Name = (*byte)(unsafe.Pointer(&b.names[i]))
			w.Namelen = rh.hdr.Namelen
			b.wiov[k].SetLen(len(resp))
			if len(wo) > 0 {
				w.Control = &b.woob[k][0]
				w.SetControllen(len(wo))
			} else {
				w.Control = nil
				w.SetControllen(0)
			}
			b.nwrite++
		}
		if b.nwrite == 0 {
			continue
		}
		b.sent = 0
		if err := rc.Write(send); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
	}
}

// sockaddrAddrPort returns the address and port of a struct sockaddr_in or
// sockaddr_in6.
func sockaddrAddrPort(sa *unix.RawSockaddrInet6) (netip.AddrPort, bool) {
	switch sa.Family {
	case unix.AF_INET:
		sa4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa4.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(sa4.Addr), port), true
	case unix.AF_INET6:
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&sa.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), port), true
	}
	return netip.AddrPort{}, false
}
