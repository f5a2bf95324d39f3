package testenv

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// CounterBy sums a counter's samples by the value of one label.
func CounterBy(t testing.TB, reg prometheus.Gatherer, metric, label string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label {
					out[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
