package policy

import (
	"go.yaml.in/yaml/v3"
)

// Marshal writes the policy as a policy file: every key, the effective
// values. A file that lists branches over the default branch says so in a
// comment, since the default branch stays production beside them.
func (p *Policy) Marshal() ([]byte, error) {
	type emergency struct {
		Label  string `yaml:"label"`
		Window string `yaml:"window"`
	}
	type promotion struct {
		Production string   `yaml:"production"`
		Staging    string   `yaml:"staging"`
		Soak       string   `yaml:"soak,omitempty"`
		Values     []string `yaml:"values,omitempty"`
	}
	type staging struct {
		Environments []string    `yaml:"environments"`
		Checks       []string    `yaml:"checks"`
		Promotion    []promotion `yaml:"promotion"`
	}
	st := staging{p.Staging.Environments, p.Staging.Checks, []promotion{}}
	for _, pr := range p.Staging.Promotion {
		soak := ""
		if pr.Soak > 0 {
			soak = formatWindow(pr.Soak)
		}
		st.Promotion = append(st.Promotion, promotion{pr.Production, pr.Staging, soak, pr.Values})
	}
	out := struct {
		Version    int        `yaml:"version"`
		Production Production `yaml:"production"`
		Ticket     Ticket     `yaml:"ticket"`
		Review     Review     `yaml:"review"`
		Staging    staging    `yaml:"staging"`
		Manager    Manager    `yaml:"manager"`
		Emergency  emergency  `yaml:"emergency"`
		Exempt     Exempt     `yaml:"exempt"`
		Freeze     []string   `yaml:"freeze"`
	}{p.Version, p.Production, p.Ticket, p.Review, st, p.Manager,
		emergency{p.Emergency.Label, formatWindow(p.Emergency.Window)}, p.Exempt, p.Freeze}
	b, err := yaml.Marshal(out)
	if err != nil {
		return nil, err
	}
	if p.Production.withDefault {
		b = append([]byte("# production: the default branch, and the branches listed\n"), b...)
	}
	return b, nil
}
