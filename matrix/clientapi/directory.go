package clientapi

import "github.com/labstack/echo/v4"

func (a *API) routesDirectory(g *echo.Group) {}
