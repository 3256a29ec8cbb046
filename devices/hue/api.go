package hue

import "encoding/json"

// The CLIP v2 wire types Hearth reads and writes. Only the fields the adapter uses are
// declared; json ignores the rest, so newer bridge firmware with more fields still parses.

// resourceRef points at another resource ({"rid": ..., "rtype": ...}).
type resourceRef struct {
	RID   string `json:"rid"`
	RType string `json:"rtype"`
}

type metadata struct {
	Name      string `json:"name"`
	Archetype string `json:"archetype,omitempty"`
}

type onState struct {
	On bool `json:"on"`
}

type dimming struct {
	Brightness float64 `json:"brightness"`
}

type mirekSchema struct {
	Minimum int `json:"mirek_minimum"`
	Maximum int `json:"mirek_maximum"`
}

type colorTemperature struct {
	Mirek       *int         `json:"mirek"`
	MirekValid  bool         `json:"mirek_valid"`
	MirekSchema *mirekSchema `json:"mirek_schema,omitempty"`
}

type xy struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

type color struct {
	XY xy `json:"xy"`
}

// light is a /clip/v2/resource/light item, and also the shape of a light update event, in
// which every property is optional.
type light struct {
	ID               string            `json:"id"`
	Owner            *resourceRef      `json:"owner,omitempty"`
	Metadata         *metadata         `json:"metadata,omitempty"`
	On               *onState          `json:"on,omitempty"`
	Dimming          *dimming          `json:"dimming,omitempty"`
	ColorTemperature *colorTemperature `json:"color_temperature,omitempty"`
	Color            *color            `json:"color,omitempty"`
}

type productData struct {
	ModelID          string `json:"model_id"`
	ManufacturerName string `json:"manufacturer_name"`
	ProductName      string `json:"product_name"`
}

// device is a /clip/v2/resource/device item: the physical thing, whose services include its
// light(s).
type device struct {
	ID          string        `json:"id"`
	Metadata    metadata      `json:"metadata"`
	ProductData productData   `json:"product_data"`
	Services    []resourceRef `json:"services"`
}

// room is a /clip/v2/resource/room item; its children are devices.
type room struct {
	ID       string        `json:"id"`
	Metadata metadata      `json:"metadata"`
	Children []resourceRef `json:"children"`
}

type sceneStatus struct {
	Active string `json:"active"` // "inactive", "static", "dynamic_palette"
}

// scene is a /clip/v2/resource/scene item; group is the room (or zone) it belongs to.
type scene struct {
	ID       string       `json:"id"`
	Metadata *metadata    `json:"metadata,omitempty"`
	Group    *resourceRef `json:"group,omitempty"`
	Status   *sceneStatus `json:"status,omitempty"`
}

// apiError is one entry of a CLIP v2 response's "errors".
type apiError struct {
	Description string `json:"description"`
}

// envelope is every CLIP v2 response: {"errors": [...], "data": [...]}.
type envelope struct {
	Errors []apiError      `json:"errors"`
	Data   json.RawMessage `json:"data"`
}

// event is one event of an event stream container; Data holds resources of any type, told
// apart by their "type".
type event struct {
	ID           string            `json:"id"`
	Type         string            `json:"type"` // "update", "add", "delete", "error"
	CreationTime string            `json:"creationtime"`
	Data         []json.RawMessage `json:"data"`
}

// lightUpdate is the body of PUT /clip/v2/resource/light/{id}.
type lightUpdate struct {
	On               *onState     `json:"on,omitempty"`
	Dimming          *dimming     `json:"dimming,omitempty"`
	ColorTemperature *mirekUpdate `json:"color_temperature,omitempty"`
	Color            *color       `json:"color,omitempty"`
}

type mirekUpdate struct {
	Mirek int `json:"mirek"`
}

// sceneUpdate is the body of PUT /clip/v2/resource/scene/{id} that recalls a scene.
type sceneUpdate struct {
	Recall sceneRecall `json:"recall"`
}

type sceneRecall struct {
	Action string `json:"action"` // "active"
}
