package clientapi

import "github.com/labstack/echo/v4"

func (a *API) routesMembership(g *echo.Group) {}
