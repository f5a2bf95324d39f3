package policy

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// A freeze window is written in one of two forms:
//
//	2026-12-20T00:00:00Z/2027-01-04T00:00:00Z   fixed: RFC 3339 start/end
//	Fri 18:00 - Mon 06:00 Europe/Berlin          weekly: day time - day time, IANA zone
//
// A window includes its start and excludes its end. A weekly window may
// wrap the week (Fri to Mon). During a window the deployment gate rejects
// production deployments that are not emergencies; merge checks are not
// affected.
type window struct {
	text       string
	start, end time.Time // fixed
	// weekly: minutes since Sunday 00:00 in loc
	from, to int
	loc      *time.Location
}

var weeklyWindow = regexp.MustCompile(`^(?i)(sun|mon|tue|wed|thu|fri|sat)[a-z]*\s+(\d{1,2}):(\d{2})\s*-\s*(sun|mon|tue|wed|thu|fri|sat)[a-z]*\s+(\d{1,2}):(\d{2})\s+(\S+)$`)

var weekdays = map[string]int{"sun": 0, "mon": 1, "tue": 2, "wed": 3, "thu": 4, "fri": 5, "sat": 6}

// parseWindow reads one freeze window.
func parseWindow(s string) (window, error) {
	s = strings.TrimSpace(s)
	if a, b, ok := strings.Cut(s, "/"); ok && !strings.ContainsAny(a+b, " \t") {
		return fixedWindow(s, a, b)
	}
	m := weeklyWindow.FindStringSubmatch(s)
	if m == nil {
		return window{}, fmt.Errorf("%q is neither START/END in RFC 3339 (2026-12-20T00:00:00Z/2027-01-04T00:00:00Z) nor a weekly range (Fri 18:00 - Mon 06:00 Europe/Berlin)", s)
	}
	loc, err := time.LoadLocation(m[7])
	if err != nil {
		return window{}, fmt.Errorf("%q: %q is not an IANA time zone such as Europe/Berlin or UTC", s, m[7])
	}
	from, err1 := weekMinute(m[1], m[2], m[3])
	to, err2 := weekMinute(m[4], m[5], m[6])
	if err := cmpErr(err1, err2); err != nil {
		return window{}, fmt.Errorf("%q: %v", s, err)
	}
	if from == to {
		return window{}, fmt.Errorf("%q starts where it ends", s)
	}
	return window{text: s, from: from, to: to, loc: loc}, nil
}

func cmpErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func fixedWindow(s, a, b string) (window, error) {
	start, err1 := time.Parse(time.RFC3339, a)
	end, err2 := time.Parse(time.RFC3339, b)
	switch {
	case err1 != nil || err2 != nil:
		return window{}, fmt.Errorf("%q: start and end must be RFC 3339 times, such as 2026-12-20T00:00:00Z", s)
	case !start.Before(end):
		return window{}, fmt.Errorf("%q: the start is not before the end", s)
	}
	return window{text: s, start: start, end: end}, nil
}

func weekMinute(day, hour, minute string) (int, error) {
	var h, m int
	fmt.Sscan(hour, &h)
	fmt.Sscan(minute, &m)
	if h > 23 || m > 59 {
		return 0, fmt.Errorf("%s:%s is not a time of day", hour, minute)
	}
	return weekdays[strings.ToLower(day[:3])]*24*60 + h*60 + m, nil
}

// contains says whether t falls in the window.
func (w window) contains(t time.Time) bool {
	if w.loc == nil {
		return !t.Before(w.start) && t.Before(w.end)
	}
	lt := t.In(w.loc)
	now := int(lt.Weekday())*24*60 + lt.Hour()*60 + lt.Minute()
	if w.from < w.to {
		return now >= w.from && now < w.to
	}
	return now >= w.from || now < w.to // wraps the week
}

// FrozenAt returns the freeze window that t falls in, if any.
func (p *Policy) FrozenAt(t time.Time) (string, bool) {
	for _, s := range p.Freeze {
		w, err := parseWindow(s)
		if err == nil && w.contains(t) {
			return w.text, true
		}
	}
	return "", false
}
