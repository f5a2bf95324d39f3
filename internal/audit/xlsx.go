package audit

import (
	"io"
	"strconv"
	"time"

	"github.com/xuri/excelize/v2"
)

// WriteXLSX writes the population as a workbook: one sheet, the same
// columns as CSV, numbers and booleans typed, times as date cells (UTC),
// text escaped against formula injection as in CSV.
func (p *Population) WriteXLSX(w io.Writer) error {
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "Population"
	if err := f.SetSheetName("Sheet1", sheet); err != nil {
		return err
	}
	dates, err := f.NewStyle(&excelize.Style{CustomNumFmt: ptr("yyyy-mm-dd hh:mm:ss")})
	if err != nil {
		return err
	}
	sw, err := f.NewStreamWriter(sheet)
	if err != nil {
		return err
	}
	header := make([]any, len(columns))
	for i, c := range columns {
		header[i] = c.name
	}
	if err := sw.SetRow("A1", header); err != nil {
		return err
	}
	for i := range p.Rows {
		cell, err := excelize.CoordinatesToCellName(1, i+2)
		if err != nil {
			return err
		}
		if err := sw.SetRow(cell, xlsxCells(&p.Rows[i], dates)); err != nil {
			return err
		}
	}
	if err := sw.Flush(); err != nil {
		return err
	}
	_, err = f.WriteTo(w)
	return err
}

func xlsxCells(r *Row, dates int) []any {
	cells := make([]any, len(columns))
	for i, c := range columns {
		v := c.cell(r)
		cells[i] = xlsxValue(c.kind, v, dates)
	}
	return cells
}

func xlsxValue(k kind, v string, dates int) any {
	if v == "" {
		return nil
	}
	switch k {
	case number:
		if n, err := strconv.ParseUint(v, 10, 64); err == nil {
			return n
		}
	case boolean:
		return v == "true"
	case timestamp:
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return excelize.Cell{StyleID: dates, Value: t.UTC()}
		}
	}
	return SafeCell(v)
}

func ptr[T any](v T) *T { return &v }
