package api

import (
	"net/http"

	"go.uber.org/zap"

	vswitch "github.com/vswitch/vswitch/switch"
)

// This file holds the handlers of the responders' tables: bindings and
// DNS. Validation is the Control's; the handlers only check what the query
// string carries and map errors.

func (s *Server) peepholeRoutes(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/bindings", s.getBindings)
	mux.HandleFunc("POST /v1/bindings", s.addBinding)
	mux.HandleFunc("DELETE /v1/bindings", s.delBinding)
	mux.HandleFunc("DELETE /v1/bindings/gleaned", s.flushGleaned)
	mux.HandleFunc("GET /v1/dns", s.getDNS)
	mux.HandleFunc("POST /v1/dns/zones", s.addDNSZone)
	mux.HandleFunc("DELETE /v1/dns/zones/{name}", s.delDNSZone)
	mux.HandleFunc("POST /v1/dns/records", s.addDNSRecord)
	mux.HandleFunc("DELETE /v1/dns/records", s.delDNSRecord)
}

func (s *Server) getBindings(w http.ResponseWriter, r *http.Request) {
	f, err := parseBindingFilter(r.URL.Query())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	all := s.ctl.Bindings()
	out := make([]vswitch.BindingInfo, 0, len(all)) // [] rather than null
	for _, b := range all {
		if f.Match(b) {
			out = append(out, b)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) addBinding(w http.ResponseWriter, r *http.Request) {
	var spec vswitch.BindingSpec
	if err := decodeBody(w, r, &spec); err != nil {
		s.writeError(w, r, err)
		return
	}
	info, err := s.ctl.AddBinding(spec)
	if err != nil {
		s.writeError(w, r, nameSubject(err, "add binding %s vlan %d", spec.IP, spec.VLAN))
		return
	}
	s.log.Info("binding added", zap.String("ip", info.IP), zap.String("mac", info.MAC),
		zap.Uint16("vlan", info.VLAN), zap.String("kind", info.Kind), zap.String("port", info.Port))
	writeJSON(w, http.StatusCreated, info)
}

func (s *Server) delBinding(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ip := q.Get("ip")
	if ip == "" {
		s.writeError(w, r, &vswitch.FieldError{Field: "ip", Msg: "is required"})
		return
	}
	vlan, err := parseVLAN(q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var v uint16
	if vlan != nil {
		v = *vlan
	}
	if err := s.ctl.DelBinding(v, ip); err != nil {
		s.writeError(w, r, nameSubject(err, "delete binding %s vlan %d", ip, v))
		return
	}
	s.log.Info("binding deleted", zap.String("ip", ip), zap.Uint16("vlan", v))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) flushGleaned(w http.ResponseWriter, r *http.Request) {
	n := s.ctl.FlushGleaned()
	s.log.Info("gleaned bindings flushed", zap.Int("bindings", n))
	writeJSON(w, http.StatusOK, FlushResult{Flushed: n})
}

func (s *Server) getDNS(w http.ResponseWriter, r *http.Request) {
	d := s.ctl.DNS()
	// [] rather than null: clients range over them.
	if d.Zones == nil {
		d.Zones = []vswitch.DNSZoneSpec{}
	}
	if d.Records == nil {
		d.Records = []vswitch.DNSRecordSpec{}
	}
	writeJSON(w, http.StatusOK, d)
}

func (s *Server) addDNSZone(w http.ResponseWriter, r *http.Request) {
	var spec vswitch.DNSZoneSpec
	if err := decodeBody(w, r, &spec); err != nil {
		s.writeError(w, r, err)
		return
	}
	z, err := s.ctl.AddDNSZone(spec)
	if err != nil {
		s.writeError(w, r, nameSubject(err, "add zone %q", spec.Name))
		return
	}
	s.log.Info("dns zone added", zap.String("zone", z.Name))
	writeJSON(w, http.StatusCreated, z)
}

func (s *Server) delDNSZone(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := s.ctl.DelDNSZone(name); err != nil {
		s.writeError(w, r, nameSubject(err, "delete zone %q", name))
		return
	}
	s.log.Info("dns zone deleted", zap.String("zone", name))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) addDNSRecord(w http.ResponseWriter, r *http.Request) {
	var spec vswitch.DNSRecordSpec
	if err := decodeBody(w, r, &spec); err != nil {
		s.writeError(w, r, err)
		return
	}
	rec, err := s.ctl.AddDNSRecord(spec)
	if err != nil {
		s.writeError(w, r, nameSubject(err, "add record %s %s %s", spec.Name, spec.Type, spec.Value))
		return
	}
	s.log.Info("dns record added", zap.String("name", rec.Name), zap.String("type", rec.Type), zap.String("value", rec.Value))
	writeJSON(w, http.StatusCreated, rec)
}

func (s *Server) delDNSRecord(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	spec := vswitch.DNSRecordSpec{Name: q.Get("name"), Type: q.Get("type"), Value: q.Get("value")}
	for _, p := range []struct{ field, v string }{{"name", spec.Name}, {"type", spec.Type}} {
		if p.v == "" {
			s.writeError(w, r, &vswitch.FieldError{Field: p.field, Msg: "is required"})
			return
		}
	}
	if err := s.ctl.DelDNSRecord(spec); err != nil {
		subject := "delete record " + spec.Name + " " + spec.Type
		if spec.Value != "" {
			subject += " " + spec.Value
		}
		s.writeError(w, r, nameSubject(err, "%s", subject))
		return
	}
	s.log.Info("dns record deleted", zap.String("name", spec.Name), zap.String("type", spec.Type), zap.String("value", spec.Value))
	w.WriteHeader(http.StatusNoContent)
}
