package pgtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Server is a PostgreSQL server of a test's own, for tests that restart or stop
// the database under a running system: the shared test server cannot be
// restarted without breaking every other test using it.
type Server struct {
	// URL reaches the server's postgres database.
	URL string

	t       testing.TB
	bin     string
	dataDir string
	asUser  []string // runuser prefix when running as root
}

// StartServer initializes a throwaway cluster in a temporary folder and starts it
// on a free port of 127.0.0.1 (trust authentication, fsync off). It is stopped and
// removed when the test ends. The test fails with a clear message when the
// PostgreSQL server programs are not installed.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, err := serverBinDir()
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	s := &Server{t: t, bin: bin}
	// The server refuses to run as root; the Debian packages' postgres user can.
	if u, err := user.Current(); err == nil && u.Uid == "0" {
		pg, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("pgtest: running as root and there is no postgres user to run a server as: %v", err)
		}
		s.asUser = []string{"runuser", "-u", pg.Username, "--"}
		dir, err := os.MkdirTemp("", "freshet-pgtest-")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(pg.Uid)
		gid, _ := strconv.Atoi(pg.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		s.dataDir = dir
	} else {
		dir, err := os.MkdirTemp("", "freshet-pgtest-")
		if err != nil {
			t.Fatal(err)
		}
		s.dataDir = dir
	}
	t.Cleanup(func() {
		_ = s.ctl("stop", "-m", "immediate")
		os.RemoveAll(s.dataDir)
	})
	data := filepath.Join(s.dataDir, "data")
	if out, err := s.command("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync").CombinedOutput(); err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("\nport = %d\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '%s'\nfsync = off\nmax_connections = 200\n", port, s.dataDir)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(conf); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := s.ctl("start"); err != nil {
		t.Fatalf("pgtest: start server: %v", err)
	}
	s.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL)
	if err != nil {
		t.Fatalf("pgtest: connect to the test's server: %v", err)
	}
	conn.Close(ctx)
	return s
}

// Restart stops the server the way an operator restarting it would (fast: open
// connections are cut, committed work is kept) and starts it again.
func (s *Server) Restart() {
	s.t.Helper()
	if err := s.ctl("restart", "-m", "fast"); err != nil {
		s.t.Fatalf("pgtest: restart: %v", err)
	}
}

func (s *Server) ctl(args ...string) error {
	args = append([]string{"-D", filepath.Join(s.dataDir, "data"), "-w", "-l", filepath.Join(s.dataDir, "server.log")}, args...)
	out, err := s.command("pg_ctl", args...).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(s.dataDir, "server.log"))
		return fmt.Errorf("pg_ctl %s: %v\n%s\nserver log:\n%s", strings.Join(args, " "), err, out, log)
	}
	return nil
}

func (s *Server) command(name string, args ...string) *exec.Cmd {
	argv := append(append(append([]string{}, s.asUser...), filepath.Join(s.bin, name)), args...)
	return exec.Command(argv[0], argv[1:]...)
}

// serverBinDir finds the newest installed PostgreSQL's server programs.
func serverBinDir() (string, error) {
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dir := strings.TrimSpace(string(out))
		if _, err := os.Stat(filepath.Join(dir, "initdb")); err == nil {
			return dir, nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("no PostgreSQL server programs (initdb, pg_ctl) found: install the postgresql package")
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
