package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// recordingHandler counts the attributes attached to it, to show when formatting happens.
type recordingHandler struct {
	slog.Handler
	attached *int
}

func (h recordingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	*h.attached += len(attrs)
	return recordingHandler{h.Handler.WithAttrs(attrs), h.attached}
}

func (h recordingHandler) WithGroup(name string) slog.Handler {
	return recordingHandler{h.Handler.WithGroup(name), h.attached}
}

func newLogger(out *bytes.Buffer, attached *int) *slog.Logger {
	text := slog.NewTextHandler(out, &slog.HandlerOptions{Level: slog.LevelWarn})
	return slog.New(newLazyHandler(recordingHandler{text, attached}))
}

func TestDiscardedRecordsNeverFormatTheirAttributes(t *testing.T) {
	var out bytes.Buffer
	attached := 0
	newLogger(&out, &attached).With("args", []any{"a whole document"}).Debug(">>> INSERT")
	if attached != 0 || out.Len() != 0 {
		t.Fatalf("a debug record below the level attached %d attributes and wrote %q", attached, out.String())
	}
}

func TestWrittenRecordsKeepAttributesAndGroupsInOrder(t *testing.T) {
	var out bytes.Buffer
	attached := 0
	logger := newLogger(&out, &attached)
	parent := logger.With("conn", 7).WithGroup("sql")
	parent.With("table", "clients").Warn("slow", "ms", 12)
	parent.With("table", "other").Debug("discarded")
	got := strings.TrimSpace(out.String())
	if !strings.HasSuffix(got, `msg=slow conn=7 sql.table=clients sql.ms=12`) {
		t.Fatalf("unexpected line %q", got)
	}
	if strings.Contains(got, "other") {
		t.Fatalf("a sibling logger's attribute leaked into %q", got)
	}
	if attached != 2 {
		t.Fatalf("attached %d attributes, want 2 (only the written record's)", attached)
	}
}
