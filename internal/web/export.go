package web

import (
	"context"
	"strings"

	"github.com/labstack/echo/v4"
)

// exporter builds the package of chosen records (audit.Service.Export).
type exporter interface {
	Export(ctx context.Context, ids []string) ([]byte, error)
}

// export answers GET /api/v1/export?id=…&id=… with the evidence package
// of the records named, as `changegate audit export` writes it.
func (h *Handler) export(c echo.Context) error {
	var ids []string
	for _, v := range c.QueryParams()["id"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	ex, ok := h.svc.(exporter)
	if !ok {
		return echo.ErrNotFound
	}
	zip, err := ex.Export(c.Request().Context(), ids)
	if err != nil {
		return h.fail(c, err)
	}
	return sendZip(c, "export.zip", zip)
}
