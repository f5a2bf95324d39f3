package web

import (
	"strings"

	"github.com/labstack/echo/v4"
)

// export answers GET /api/v1/export?id=…&id=… with the evidence package
// of the records named, as `changegate audit export` writes it. The ids
// keep their order: the package lists its picks in it.
func (h *Handler) export(c echo.Context) error {
	var ids []string
	for _, v := range c.QueryParams()["id"] {
		for _, id := range strings.Split(v, ",") {
			if id = strings.TrimSpace(id); id != "" {
				ids = append(ids, id)
			}
		}
	}
	zip, err := h.svc.Export(c.Request().Context(), ids)
	if err != nil {
		return h.fail(c, err)
	}
	return sendZip(c, "export.zip", zip)
}
