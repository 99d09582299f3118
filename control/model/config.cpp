#include "control/model/config.h"
