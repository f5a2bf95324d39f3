package setup

import (
	"bytes"
	"embed"
	"html/template"

	"github.com/labstack/echo/v4"
)

//go:embed templates/setup.html
var files embed.FS

var pages = template.Must(template.ParseFS(files, "templates/setup.html"))

type formView struct {
	Public, GitHub string
	Permissions    []struct{ Name, Access, Why string }
}

type postView struct{ Action, Manifest string }

type doneView struct{ Slug, InstallURL string }

type errorView struct{ Message string }

func render(c echo.Context, status int, page string, v any) error {
	var b bytes.Buffer
	if err := pages.ExecuteTemplate(&b, page, v); err != nil {
		return err
	}
	return c.HTMLBlob(status, b.Bytes())
}
