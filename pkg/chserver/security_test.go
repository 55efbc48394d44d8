package chserver_test

import (
	"context"
	"strings"
	"testing"

	"github.com/leakline/leakline/pkg/chserver"
)

func TestOptionsValidated(t *testing.T) {
	cases := []struct {
		name string
		opt  chserver.Options
		want string
	}{
		{"user name with a dash", chserver.Options{Users: []chserver.User{{Name: "leak-line", Password: "p"}}}, `user name "leak-line"`},
		{"user name that is XML", chserver.Options{Users: []chserver.User{{Name: "a><b", Password: "p"}}}, "user name"},
		{"built-in user", chserver.Options{Users: []chserver.User{{Name: "default", Password: "p"}}}, "not default or readonly"},
		{"TLS without a key", chserver.Options{TLS: &chserver.TLSFiles{CertFile: "c.pem"}}, "certificate file and a key file"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := chserver.Start(context.Background(), tc.opt)
			if err == nil {
				s.Stop()
				t.Fatal("started")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
