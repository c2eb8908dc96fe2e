package dnsserver

import (
	"encoding/binary"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// reusePort is whether several UDP sockets can share an address, the
// kernel spreading queries over them.
const reusePort = true

// udpControl sets the options of a fast-path UDP socket: SO_REUSEPORT, and,
// on a socket of the unspecified address, the delivery of each query's
// destination address (IP_PKTINFO, IPV6_RECVPKTINFO) so that the answer can
// leave from it on a host with several addresses.
func udpControl(pktinfo bool) func(network, address string, c syscall.RawConn) error {
	return func(network, address string, c syscall.RawConn) error {
		var err error
		cerr := c.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
			if err == nil && pktinfo {
				// One of the two fails on a single-family socket.
				e4 := unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_PKTINFO, 1)
				e6 := unix.SetsockoptInt(int(fd), unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1)
				if e4 != nil && e6 != nil {
					err = e4
				}
			}
		})
		if cerr != nil {
			return cerr
		}
		return err
	}
}

// replyOOB writes into dst (8-byte aligned, 64 octets or more) the control
// message that makes a reply leave from the address the query, received
// with the control messages oob, was sent to. It returns dst[:0] if oob has
// no packet information.
func replyOOB(dst, oob []byte) []byte {
	hdr := unix.CmsgLen(0)
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			break
		}
		data := oob[hdr:l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo: ifindex, spec_dst, addr (the destination).
			var pi unix.Inet4Pktinfo
			copy(pi.Spec_dst[:], data[8:12])
			return putCmsg(dst, unix.IPPROTO_IP, unix.IP_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&pi)), unix.SizeofInet4Pktinfo))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			// struct in6_pktinfo: addr (the destination), ifindex.
			var pi unix.Inet6Pktinfo
			copy(pi.Addr[:], data[:16])
			pi.Ifindex = binary.NativeEndian.Uint32(data[16:20])
			return putCmsg(dst, unix.IPPROTO_IPV6, unix.IPV6_PKTINFO, unsafe.Slice((*byte)(unsafe.Pointer(&pi)), unix.SizeofInet6Pktinfo))
		}
		next := unix.CmsgSpace(l - hdr)
		if next > len(oob) {
			break
		}
		oob = oob[next:]
	}
	return dst[:0]
}

func putCmsg(dst []byte, level, typ int32, data []byte) []byte {
	n := unix.CmsgSpace(len(data))
	if len(dst) < n {
		return dst[:0]
	}
	dst = dst[:n]
	clear(dst)
	h := (*unix.Cmsghdr)(unsafe.Pointer(&dst[0]))
	h.Level, h.Type = level, typ
	h.SetLen(unix.CmsgLen(len(data)))
	copy(dst[unix.CmsgLen(0):], data)
	return dst
}
