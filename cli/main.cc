// ringctl: see `ringctl --help`.
#include <iostream>
#include <string>
#include <vector>

#include "cli/ringctl.h"

int main(int argc, char** argv) {
  return ringwarden::RunRingctl(std::vector<std::string>(argv, argv + argc), std::cout, std::cerr);
}
