// Command ferretdb runs an embedded FerretDB v1 (SQLite backend) on a TCP address.
//
// It exists so that a machine without Docker can still offer a MongoDB-compatible
// database to the services and their tests. Flags:
//
//	-listen 127.0.0.1:27017   TCP address to listen on
//	-data   ./data             directory that holds the SQLite files
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// sqliteParams: in WAL mode (FerretDB's default) synchronous=NORMAL syncs the log at
// checkpoints rather than at every commit. A crash of the process loses nothing; a power
// loss may lose the last commits, the same promise as MongoDB's default write concern
// (acknowledged before the journal is flushed). It roughly doubles the insert rate here.
const sqliteParams = "_pragma=synchronous(normal)"

func main() {
	listen := flag.String("listen", "127.0.0.1:27017", "TCP address to listen on")
	data := flag.String("data", "data", "directory for the SQLite database files")
	flag.Parse()

	dir, err := filepath.Abs(*data)
	if err == nil {
		err = os.MkdirAll(dir, 0o700)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: data directory %q: %v\n", *data, err)
		os.Exit(1)
	}

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: "file:" + dir + "/?" + sqliteParams,
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(os.Stderr, "ferretdb: listening on %s, data in %s\n", *listen, dir)
	if err := f.Run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "ferretdb: %v\n", err)
		os.Exit(1)
	}
}
