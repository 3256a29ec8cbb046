package clientapi

import "github.com/labstack/echo/v4"

func (a *API) routesProfile(g *echo.Group) {}
