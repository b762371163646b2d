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
	"runtime"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

// sqliteParams, for every connection FerretDB opens:
//
//   - synchronous=NORMAL: in WAL mode (FerretDB's default) the log is synced at checkpoints
//     rather than at every commit. A crash of the process loses nothing; a power loss may
//     lose the last commits, the same promise as MongoDB's default write concern
//     (acknowledged before the journal is flushed). It roughly doubles the insert rate here.
//   - wal_autocheckpoint=100 pages (SQLite's default is 1000): the commit that fills the log
//     copies it into the database file and syncs that, inline, before it answers. At 1000
//     pages (~4 MB) that sync stalls the commit for ~8 ms here, about one batch of client
//     inserts in fifty: a 6-document insert_many took p50 1.6 ms but p99 10 ms. At 100 pages
//     each checkpoint syncs a tenth as much and p99 is 5 ms, for the same inserts per second
//     and CPU (registration at c=16: p99 about 13% lower, the same throughput within noise).
//     What is durable, and when, is unchanged.
const sqliteParams = "_pragma=synchronous(normal)&_pragma=wal_autocheckpoint(100)"

// defaultProcs is how many OS threads run Go code at once (GOMAXPROCS) unless the
// environment says otherwise. One, because SQLite takes one writer at a time anyway, and on
// this two-core machine, shared with the services, Redis and RabbitMQ, Go's idle threads
// spinning for work and stealing it across processors cost CPU the others need. Measured
// here (client inserts in batches of 6; registration at c=16, 5 alternating pairs):
//
//   - database CPU per document 155-211 µs against 227-277 µs; three concurrent writers
//     5,100-5,700 documents/s against 3,900-4,500;
//   - registration at c=16: more requests/s in 5 of 5 pairs (median +8%), a lower p99 in
//     5 of 5, about 10% less database CPU per registration;
//   - settings propagation with three replicas under load: p99 median 29 ms against 40 ms.
const defaultProcs = 1

func main() {
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(defaultProcs)
	}
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

	logger := slog.New(newLazyHandler(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
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
