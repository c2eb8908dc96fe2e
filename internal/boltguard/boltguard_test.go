package boltguard

import (
	"errors"
	"strings"
	"testing"
)

func TestOpen(t *testing.T) {
	failed := errors.New("open failed")
	for _, tc := range []struct {
		name    string
		open    func() error
		want    error  // errors.Is the result; nil: no error
		message string // the result's text contains it
	}{
		{"opens", func() error { return nil }, nil, ""},
		{"error passes through", func() error { return failed }, failed, "open failed"},
		{"panic becomes ErrCorrupt", func() error { panic("page 7: invalid page type") }, ErrCorrupt, "page 7: invalid page type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Open(tc.open)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("got %v, want %v with %q", err, tc.want, tc.message)
			}
		})
	}
}
