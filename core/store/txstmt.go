package store

import (
	"context"
	"database/sql"
)

// querier is what writing a run needs of a transaction: a *sql.Tx, or a
// preparedTx.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// preparedTx runs the queries of one transaction through the store's
// prepared statements: a run writes the same few statements for every
// container it checked, and SQLite spends more time parsing them than
// running them (two thirds of a 300-container run's CPU). A query that
// cannot be prepared runs as it is, and reports its own error.
type preparedTx struct {
	s     *Store
	tx    *sql.Tx
	stmts map[string]*sql.Stmt // bound to tx; closed with it
}

func newPreparedTx(s *Store, tx *sql.Tx) *preparedTx {
	return &preparedTx{s: s, tx: tx, stmts: map[string]*sql.Stmt{}}
}

func (p *preparedTx) stmt(ctx context.Context, q string) *sql.Stmt {
	if st, ok := p.stmts[q]; ok {
		return st
	}
	st, err := p.s.txStmt(ctx, p.tx, q)
	if err != nil {
		return nil
	}
	p.stmts[q] = st
	return st
}

func (p *preparedTx) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	if st := p.stmt(ctx, q); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return p.tx.ExecContext(ctx, q, args...)
}

func (p *preparedTx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if st := p.stmt(ctx, q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.tx.QueryContext(ctx, q, args...)
}

func (p *preparedTx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	if st := p.stmt(ctx, q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.tx.QueryRowContext(ctx, q, args...)
}
