package clientapi_test

import (
	"net/http"
	"testing"

	"github.com/hearth-home/hearth/appliance/testserver"
)

// Room v12 additional_creators must be a list of valid user IDs (MSC4289).
func TestCreateRoomAdditionalCreators(t *testing.T) {
	s := testserver.Start(t)
	alice := s.Register(t, "alice", false)
	for body, want := range map[string]int{
		`{"room_version":"12","creation_content":{"additional_creators":["@foo:example.com","@bar:baz.code"]}}`: 200,
		`{"room_version":"12","creation_content":{"additional_creators":"@foo:example.com"}}`:                   400,
		`{"room_version":"12","creation_content":{"additional_creators":["@foo:example.com",5]}}`:               400,
		`{"room_version":"12","creation_content":{"additional_creators":["not-a-user-id"]}}`:                    400,
		`{"room_version":"12","creation_content":{"additional_creators":["@invalid:dom$ain$.com"]}}`:            400,
	} {
		st, resp := s.Raw(t, http.MethodPost, "/_matrix/client/v3/createRoom", alice.AccessToken, body)
		if st != want || (want == 400 && resp["errcode"] != "M_BAD_JSON") {
			t.Errorf("%s: %d %v, want %d", body, st, resp, want)
		}
	}
}
