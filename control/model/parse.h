// YAML -> Config, field by field (the schema lives here and in parse_instance.cpp). Only syntax and
// types are checked while reading; the semantic rules are validate()'s.
#pragma once

#include <yaml-cpp/yaml.h>

#include <string>

#include "control/model/config.h"
#include "control/model/yaml_reader.h"

namespace espgw::model::internal {

// Reads the whole document into *c (c->path must be set: key files resolve against its directory)
// and fills the derived defaults. Errors go to r.
void parse_config(Reader& r, const YAML::Node& root, Config* c);

void parse_instance(Reader& r, const Field& f, const std::string& key_dir, Instance* in);

}  // namespace espgw::model::internal
