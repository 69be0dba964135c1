package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/freshetdev/freshet/assets"
	"github.com/freshetdev/freshet/graph"
	"github.com/freshetdev/freshet/materialize"
	"github.com/freshetdev/freshet/store"
	"github.com/freshetdev/freshet/store/postgres"
	"github.com/freshetdev/freshet/store/sqlite"
)

// databaseEnv names the environment variable that chooses the catalog database when
// --db is not given.
const databaseEnv = "FRESHET_DATABASE_URL"

// catalogFlags are the flags of every command that reads or writes the catalog.
type catalogFlags struct {
	path string // -f: definitions
	db   string // --db: catalog database URL
}

func (f *catalogFlags) register(cmd *cobra.Command) {
	definitionsFlag(cmd, &f.path)
	cmd.Flags().StringVar(&f.db, "db", "", "catalog database: postgres://… or sqlite:PATH, in an existing folder (default: $"+databaseEnv+
		", else sqlite:.freshet/freshet.db beside the definitions)")
}

// project is a loaded definitions folder with its catalog open and synced.
type project struct {
	defs  *assets.Definitions
	g     *graph.Graph
	store store.Store
}

// openEngine loads the definitions, opens the catalog database and serves the
// definitions with an engine (which syncs them into the catalog and reads its
// state), planning at now (nil: the clock). It reports any definition change on
// stderr. The caller closes the store.
func openEngine(cmd *cobra.Command, f *catalogFlags, now func() time.Time) (*materialize.Engine, store.Store, error) {
	defs, g, err := loadGraph(cmd, f.path)
	if err != nil {
		return nil, nil, err
	}
	st, err := openStore(cmd.Context(), f.db, defs.Dir, true)
	if err != nil {
		return nil, nil, err
	}
	q, err := queueOf(st)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	e, err := materialize.OpenEngine(cmd.Context(), q, f.path, defs, g, now)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	reportSync(cmd, e.Project().Sync)
	return e, st, nil
}

// openProject loads the definitions, opens the catalog database and syncs the
// definitions into it, reporting any definition change on stderr. The caller
// closes p.store.
func openProject(cmd *cobra.Command, f *catalogFlags) (*project, error) {
	defs, g, err := loadGraph(cmd, f.path)
	if err != nil {
		return nil, err
	}
	st, err := openStore(cmd.Context(), f.db, defs.Dir, true)
	if err != nil {
		return nil, err
	}
	res, err := st.SyncDefinitions(cmd.Context(), defs)
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("sync definitions into the catalog: %w", err)
	}
	reportSync(cmd, res)
	return &project{defs: defs, g: g, store: st}, nil
}

func reportSync(cmd *cobra.Command, res *store.SyncResult) {
	w := cmd.ErrOrStderr()
	list := func(keys []assets.Key) string {
		s := make([]string, len(keys))
		for i, k := range keys {
			s[i] = string(k)
		}
		if len(s) > 5 {
			return strings.Join(s[:5], ", ") + fmt.Sprintf(" and %d more", len(s)-5)
		}
		return strings.Join(s, ", ")
	}
	if len(res.Added) > 0 {
		fmt.Fprintf(w, "catalog: added %s: %s\n", pluralize(len(res.Added), "asset"), list(res.Added))
	}
	if len(res.Changed) > 0 {
		fmt.Fprintf(w, "catalog: definition changed: %s\n", list(res.Changed))
	}
	if len(res.Removed) > 0 {
		fmt.Fprintf(w, "catalog: removed from the definitions (history kept): %s\n", list(res.Removed))
	}
}

// catalogURL returns the catalog database to use: url, else $FRESHET_DATABASE_URL,
// else the embedded SQLite file .freshet/freshet.db in dir.
func catalogURL(url, dir string) string {
	if url == "" {
		url = os.Getenv(databaseEnv)
	}
	if url == "" {
		url = "sqlite:" + filepath.Join(dir, ".freshet", "freshet.db")
	}
	return url
}

// checkCatalogFolder refuses an SQLite catalog named by --db or $FRESHET_DATABASE_URL
// whose folder does not exist. The store would create it, and with it a new,
// empty catalog: a typo in the path would then show every asset as missing, and
// materialize would build everything again. Only the default folder (.freshet
// beside the definitions) is created without asking.
func checkCatalogFolder(path, source string) error {
	if path == ":memory:" || source == "" {
		return nil
	}
	folder := filepath.Dir(path)
	info, err := os.Stat(folder)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s: folder %s does not exist: create it for a new catalog, or check the path", source, folder)
	case err != nil:
		return fmt.Errorf("%s: %w", source, err)
	case !info.IsDir():
		return fmt.Errorf("%s: %s is not a folder", source, folder)
	}
	return nil
}

// openStore opens the catalog database (see catalogURL), applying pending
// migrations when migrate is set.
func openStore(ctx context.Context, url, dir string, migrate bool) (store.Store, error) {
	source := "" // where an explicit URL comes from, for errors; "" for the default
	switch {
	case url != "":
		source = "--db " + url
	case os.Getenv(databaseEnv) != "":
		source = "$" + databaseEnv + " " + os.Getenv(databaseEnv)
	}
	url = catalogURL(url, dir)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		var opts []postgres.Option
		if !migrate {
			opts = append(opts, postgres.WithoutMigrations())
		}
		st, err := postgres.Open(ctx, url, opts...)
		if err != nil {
			return nil, fmt.Errorf("open catalog %s: %w", redact(url), err)
		}
		return st, nil
	case strings.HasPrefix(url, "sqlite:"):
		path := strings.TrimPrefix(strings.TrimPrefix(url, "sqlite:"), "//")
		if path == "" {
			return nil, errors.New("--db sqlite: needs a file path, such as sqlite:.freshet/freshet.db")
		}
		if err := checkCatalogFolder(path, source); err != nil {
			return nil, err
		}
		var opts []sqlite.Option
		if !migrate {
			opts = append(opts, sqlite.WithoutMigrations())
		}
		st, err := sqlite.Open(ctx, path, opts...)
		if err != nil {
			return nil, fmt.Errorf("open catalog %s: %w", url, err)
		}
		return st, nil
	}
	return nil, fmt.Errorf("--db %q: unknown database (want postgres://USER@HOST/DB or sqlite:PATH)", redact(url))
}

// redact hides a password in a database URL before it is printed.
func redact(url string) string {
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		return url
	}
	userinfo, host, ok := strings.Cut(rest, "@")
	if !ok {
		return url
	}
	if user, _, hasPassword := strings.Cut(userinfo, ":"); hasPassword {
		return scheme + "://" + user + ":xxxxx@" + host
	}
	return url
}
