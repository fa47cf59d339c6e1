// SafeTensors: reading (memory-mapped, lazy) and writing the safetensors format, validated by its rules.
